/*
 * media_img.c — the one module that wraps libvips: image headers, thumbnails and difference
 * hashes. libvips is initialised once per process, with its operation cache off (every call
 * reads its file afresh) and one worker thread per pipeline unless VIPS_CONCURRENCY says
 * otherwise (operators already run in parallel, one per instance; extra threads only add
 * hand-offs on small images). libvips's error buffer is copied into our message and cleared.
 *
 * Files up to NU_IMG_INMEM_MAX bytes that a memory loader other than ImageMagick's recognises
 * are read into memory once and decoded from there: opening by file name sniffs every file loader
 * on each open (libvips opens a thumbnail's file several times), which costs more than a small
 * image's pixels. Larger files, and formats only loaded from files, are opened by name.
 */
#include "stage/media_int.h"

#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#define NU_IMG_INMEM_MAX (64LL << 20) /* largest file decoded from memory */

static pthread_once_t nu_img_once = PTHREAD_ONCE_INIT;
static int nu_img_ok;

static void nu_img_global_init(void)
{
    nu_img_ok = VIPS_INIT("nurion") == 0;
    if (nu_img_ok) {
        vips_cache_set_max(0);
        vips_leak_set(FALSE);
        if (!getenv("VIPS_CONCURRENCY"))
            vips_concurrency_set(1);
    }
}

static nu_err_t nu_img_start(struct nu_errbuf *eb)
{
    pthread_once(&nu_img_once, nu_img_global_init);
    if (!nu_img_ok)
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not initialise libvips");
    return NU_OK;
}

/* The libvips error as `code`, its buffer's last line as the reason. */
static nu_err_t nu_img_err(nu_err_t code, const char *what, const char *path, struct nu_errbuf *eb)
{
    char reason[512];
    const char *b = vips_error_buffer();
    size_t n;
    snprintf(reason, sizeof(reason), "%s", b && *b ? b : "unknown libvips error");
    n = strlen(reason);
    while (n > 0 && (reason[n - 1] == '\n' || reason[n - 1] == ' '))
        reason[--n] = '\0';
    for (char *p = reason; *p; p++)
        if (*p == '\n')
            *p = ' ';
    vips_error_clear();
    return nu_err_set(eb, code, "could not %s \"%s\": %s", what, path, reason);
}

static nu_err_t nu_img_check_size(VipsImage *im, const char *path, struct nu_errbuf *eb)
{
    int64_t w = vips_image_get_width(im), h = vips_image_get_height(im);
    if (w > NU_MEDIA_MAX_DIM || h > NU_MEDIA_MAX_DIM || w * h > NU_MEDIA_MAX_PIXELS)
        return nu_err_set(eb, NU_ERR_TOO_LARGE,
                          "image \"%s\" is %lldx%lld pixels, over the limit of %d per side "
                          "and %lld in all",
                          path, (long long)w, (long long)h, NU_MEDIA_MAX_DIM,
                          (long long)NU_MEDIA_MAX_PIXELS);
    return NU_OK;
}

/* An image to decode: the file's bytes when small and in a format with a memory loader, else
 * its name. */
struct nu_img_src {
    const char *path;
    char *buf; /* NULL: open by name */
    size_t len;
};

/* Read `path` into s->buf when it is small enough and a memory loader knows its format; any
 * failure here leaves s->buf NULL and the file to libvips, which reports it. */
static void nu_img_src_open(struct nu_img_src *s, const char *path)
{
    struct stat st;
    const char *loader;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    s->path = path;
    s->buf = NULL;
    s->len = 0;
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        st.st_size > NU_IMG_INMEM_MAX)
        goto out;
    s->buf = nu_xmalloc((size_t)st.st_size);
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, s->buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    /* ImageMagick's loader reads nearly anything from memory, but from a file a dedicated
     * loader (FITS, Analyze, matrix, …) may come first: such files keep their file loader */
    if (got == (size_t)st.st_size && (loader = vips_foreign_find_load_buffer(s->buf, got)) &&
        strncmp(loader, "magick", 6) != 0) {
        s->len = got;
    } else {
        free(s->buf);
        s->buf = NULL;
    }
out:
    vips_error_clear();
    close(fd);
}

static void nu_img_src_close(struct nu_img_src *s)
{
    free(s->buf);
    s->buf = NULL;
}

/* The header of s (pixels are decoded on demand). */
static VipsImage *nu_img_src_header(const struct nu_img_src *s)
{
    if (s->buf)
        return vips_image_new_from_buffer(s->buf, s->len, "", NULL);
    return vips_image_new_from_file(s->path, NULL);
}

/* vips_thumbnail of s into *out: inside w x h (crop: how to fill it; size: whether to upsize). */
static int nu_img_src_thumbnail(const struct nu_img_src *s, VipsImage **out, int w, int h,
                                VipsInteresting crop, VipsSize size)
{
    if (s->buf)
        return vips_thumbnail_buffer(s->buf, s->len, out, w, "height", h, "crop", crop, "size",
                                     size, NULL);
    return vips_thumbnail(s->path, out, w, "height", h, "crop", crop, "size", size, NULL);
}

nu_err_t nu_img_info(const char *path, bool verify, struct nu_img_info *out, struct nu_errbuf *eb)
{
    VipsImage *im = NULL;
    const char *loader = NULL;
    double avg;
    nu_err_t rc = nu_img_start(eb);

    memset(out, 0, sizeof(*out));
    if (rc != NU_OK)
        return rc;
    im = vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                  VIPS_FAIL_ON_TRUNCATED, NULL);
    if (!im)
        return nu_img_err(NU_ERR_CORRUPT, "read image", path, eb);
    rc = nu_img_check_size(im, path, eb);
    if (rc != NU_OK)
        goto out;
    out->orientation = vips_image_get_orientation(im);
    if (out->orientation < 1 || out->orientation > 8)
        out->orientation = 1;
    out->width = vips_image_get_width(im);
    out->height = vips_image_get_height(im);
    if (vips_image_get_orientation_swap(im)) {
        int64_t t = out->width;
        out->width = out->height;
        out->height = t;
    }
    out->bands = vips_image_get_bands(im);
    if (vips_image_get_string(im, VIPS_META_LOADER, &loader) == 0 && loader) {
        size_t n = strlen(loader);
        if (n > 4 && strcmp(loader + n - 4, "load") == 0)
            n -= 4;
        snprintf(out->format, sizeof(out->format), "%.*s", (int)n, loader);
        if (strncmp(out->format, "jpeg", 4) == 0)
            snprintf(out->format, sizeof(out->format), "jpeg");
    }
    if (verify && vips_avg(im, &avg, NULL) != 0)
        rc = nu_img_err(NU_ERR_CORRUPT, "decode image", path, eb);
out:
    vips_error_clear();
    g_object_unref(im);
    return rc;
}

nu_err_t nu_img_thumbnail(const char *path, const struct nu_img_thumb *t, const char *out_path,
                          int64_t *w, int64_t *h, struct nu_errbuf *eb)
{
    VipsImage *hdr = NULL, *im = NULL;
    struct nu_img_src src;
    int r;
    nu_err_t rc = nu_img_start(eb);

    if (rc != NU_OK)
        return rc;
    nu_img_src_open(&src, path);
    hdr = nu_img_src_header(&src);
    if (!hdr) {
        rc = nu_img_err(NU_ERR_CORRUPT, "read image", path, eb);
        goto out;
    }
    rc = nu_img_check_size(hdr, path, eb);
    if (rc != NU_OK)
        goto out;
    if (t->width > 0 || t->height > 0) {
        int bw = t->width > 0 ? t->width : VIPS_MAX_COORD;
        int bh = t->height > 0 ? t->height : VIPS_MAX_COORD;
        r = nu_img_src_thumbnail(&src, &im, bw, bh,
                                 t->fit == NU_IMG_FILL ? VIPS_INTERESTING_CENTRE
                                                       : VIPS_INTERESTING_NONE,
                                 VIPS_SIZE_BOTH);
    } else {
        r = vips_autorot(hdr, &im, NULL);
    }
    if (r != 0) {
        rc = nu_img_err(NU_ERR_CORRUPT, "decode image", path, eb);
        goto out;
    }
    if (strcmp(t->format, "png") == 0)
        r = vips_pngsave(im, out_path, "strip", TRUE, NULL);
    else if (strcmp(t->format, "webp") == 0)
        r = vips_webpsave(im, out_path, "Q", t->quality, "strip", TRUE, NULL);
    else
        r = vips_jpegsave(im, out_path, "Q", t->quality, "strip", TRUE, NULL);
    if (r != 0) {
        rc = nu_img_err(NU_ERR_CORRUPT, "encode image", path, eb);
        goto out;
    }
    *w = vips_image_get_width(im);
    *h = vips_image_get_height(im);
out:
    vips_error_clear();
    if (im)
        g_object_unref(im);
    if (hdr)
        g_object_unref(hdr);
    nu_img_src_close(&src);
    return rc;
}

nu_err_t nu_img_dhash(const char *path, uint64_t *hash, struct nu_errbuf *eb)
{
    VipsImage *hdr = NULL, *t = NULL, *g = NULL, *b = NULL, *u = NULL;
    unsigned char *px = NULL;
    size_t len = 0;
    struct nu_img_src src;
    nu_err_t rc = nu_img_start(eb);

    *hash = 0;
    if (rc != NU_OK)
        return rc;
    nu_img_src_open(&src, path);
    hdr = nu_img_src_header(&src);
    if (!hdr) {
        rc = nu_img_err(NU_ERR_CORRUPT, "read image", path, eb);
        goto out;
    }
    rc = nu_img_check_size(hdr, path, eb);
    if (rc != NU_OK)
        goto out;
    if (nu_img_src_thumbnail(&src, &t, 9, 8, VIPS_INTERESTING_NONE, VIPS_SIZE_FORCE) != 0 ||
        vips_colourspace(t, &g, VIPS_INTERPRETATION_B_W, NULL) != 0 ||
        vips_extract_band(g, &b, 0, NULL) != 0 || vips_cast_uchar(b, &u, NULL) != 0 ||
        !(px = vips_image_write_to_memory(u, &len)) || len != 72) {
        rc = nu_img_err(NU_ERR_CORRUPT, "hash image", path, eb);
        goto out;
    }
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            *hash = (*hash << 1) | (px[y * 9 + x] < px[y * 9 + x + 1]);
out:
    vips_error_clear();
    g_free(px);
    if (u)
        g_object_unref(u);
    if (b)
        g_object_unref(b);
    if (g)
        g_object_unref(g);
    if (t)
        g_object_unref(t);
    if (hdr)
        g_object_unref(hdr);
    nu_img_src_close(&src);
    return rc;
}

int nu_img_hamming(uint64_t a, uint64_t b)
{
    return __builtin_popcountll(a ^ b);
}
