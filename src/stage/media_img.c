/*
 * media_img.c — the one module that wraps libvips: image headers, thumbnails and difference
 * hashes. libvips is initialised once per process, with its operation cache off (every call
 * reads its file afresh). libvips's error buffer is copied into our message and cleared.
 */
#include "stage/media_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <vips/vips.h>

static pthread_once_t nu_img_once = PTHREAD_ONCE_INIT;
static int nu_img_ok;

static void nu_img_global_init(void)
{
    nu_img_ok = VIPS_INIT("nurion") == 0;
    if (nu_img_ok) {
        vips_cache_set_max(0);
        vips_leak_set(FALSE);
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
    int r;
    nu_err_t rc = nu_img_start(eb);

    if (rc != NU_OK)
        return rc;
    hdr = vips_image_new_from_file(path, NULL);
    if (!hdr)
        return nu_img_err(NU_ERR_CORRUPT, "read image", path, eb);
    rc = nu_img_check_size(hdr, path, eb);
    if (rc != NU_OK)
        goto out;
    if (t->width > 0 || t->height > 0) {
        int bw = t->width > 0 ? t->width : VIPS_MAX_COORD;
        int bh = t->height > 0 ? t->height : VIPS_MAX_COORD;
        r = vips_thumbnail(path, &im, bw, "height", bh, "crop",
                           t->fit == NU_IMG_FILL ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE,
                           NULL);
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
    g_object_unref(hdr);
    return rc;
}

nu_err_t nu_img_dhash(const char *path, uint64_t *hash, struct nu_errbuf *eb)
{
    VipsImage *hdr = NULL, *t = NULL, *g = NULL, *b = NULL, *u = NULL;
    unsigned char *px = NULL;
    size_t len = 0;
    nu_err_t rc = nu_img_start(eb);

    *hash = 0;
    if (rc != NU_OK)
        return rc;
    hdr = vips_image_new_from_file(path, NULL);
    if (!hdr)
        return nu_img_err(NU_ERR_CORRUPT, "read image", path, eb);
    rc = nu_img_check_size(hdr, path, eb);
    if (rc != NU_OK)
        goto out;
    if (vips_thumbnail(path, &t, 9, "height", 8, "size", VIPS_SIZE_FORCE, NULL) != 0 ||
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
    g_object_unref(hdr);
    return rc;
}

int nu_img_hamming(uint64_t a, uint64_t b)
{
    return __builtin_popcountll(a ^ b);
}
