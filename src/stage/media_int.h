/*
 * media_int.h — internals of the media operators (layer: stage): the FFmpeg wrapper
 * (media_av.c), the libvips wrapper (media_img.c) and helpers shared by the op_video*.c,
 * op_image.c and op_media_misc.c operators (media.c).
 *
 * Ownership: results are plain structs filled by the callee; arrays returned by *_scenes are
 * malloc'ed and returned owned. Thread-safety: every function is reentrant (FFmpeg and libvips
 * are initialised once, process-wide).
 *
 * Errors of the readers: NU_ERR_CORRUPT (the demuxer or decoder refused the data: the message
 * carries its reason), NU_ERR_UNSUPPORTED (no video stream, no decoder), NU_ERR_NOT_FOUND (no
 * such file), NU_ERR_IO (local file system), NU_ERR_SYSTEM (library set-up).
 */
#ifndef NU_STAGE_MEDIA_INT_H
#define NU_STAGE_MEDIA_INT_H

#include "nurion/operator.h"

#include "common/json.h"
#include "stage/blob.h"
#include "stage/media.h"

#include <stdbool.h>
#include <stdint.h>

/* Limits on untrusted media. */
#define NU_MEDIA_MAX_SCENES 100000
#define NU_MEDIA_MAX_BYTES  (16LL << 30)  /* largest blob fetched for a reader */
#define NU_MEDIA_MAX_PIXELS (100LL << 20) /* largest decoded image, in pixels */
#define NU_MEDIA_MAX_DIM    16384

struct nu_av_probe {
    double duration, fps; /* seconds; frames per second (0 when unknown) */
    int64_t width, height;
    char format[64], vcodec[64], acodec[64]; /* "" when absent */
};

/* Probe media file `path`. */
nu_err_t nu_av_probe(const char *path, struct nu_av_probe *out, struct nu_errbuf *eb);

struct nu_av_scene {
    double start, end; /* seconds from the start of the video stream */
    double score;      /* the scene-change score of the first frame (0 for the first scene) */
};

/*
 * Decode the video stream of `path` and cut it where the scene-change score (libavfilter's
 * select filter, 0..1) is above `threshold`, keeping only cuts at least `min_len` seconds after
 * the previous one (a too short last scene is merged into the one before). *out (n scenes,
 * at least one) returned owned. Errors: as above; NU_ERR_TOO_LARGE (over NU_MEDIA_MAX_SCENES).
 */
nu_err_t nu_av_scenes(const char *path, double threshold, double min_len, struct nu_av_scene **out,
                      size_t *n, struct nu_errbuf *eb);

/*
 * Copy the streams of `path` between `start` and `end` seconds into a new file `out_path`
 * (container `format`: "mp4", "matroska", …) without re-encoding: the clip starts at the key
 * frame at or before `start` and ends before the first key frame at or after `end` (end < 0:
 * to the end). Output is bit-exact (no creation times, no encoder tag): the same input and
 * times give the same bytes. Errors: as above.
 */
nu_err_t nu_av_slice(const char *path, double start, double end, const char *format,
                     const char *out_path, struct nu_errbuf *eb);

/* --- images (media_img.c, on libvips) --- */

struct nu_img_info {
    int64_t width, height; /* with the EXIF orientation applied */
    int orientation;       /* EXIF orientation 1..8 (1 when absent) */
    int bands;
    char format[32]; /* the loader's name without "load": "jpeg", "png", "webp", … */
};

/* Read the header of image `path` (and, when `verify`, decode every pixel, failing on
 * truncation). Errors: NU_ERR_CORRUPT (with libvips's reason), NU_ERR_TOO_LARGE (more than
 * NU_MEDIA_MAX_PIXELS or NU_MEDIA_MAX_DIM). */
nu_err_t nu_img_info(const char *path, bool verify, struct nu_img_info *out, struct nu_errbuf *eb);

enum nu_img_fit { NU_IMG_FIT = 0, NU_IMG_FILL };

struct nu_img_thumb {
    int width, height;   /* the box; 0 in both keeps the size (a format conversion) */
    enum nu_img_fit fit; /* fit: inside the box, aspect kept; fill: cover it, centre-cropped */
    const char *format;  /* "jpeg", "png" or "webp" */
    int quality;         /* 1..100 (jpeg, webp) */
};

/* Decode `path` (orientation applied, shrink-on-load), resize as `t` says and save to
 * `out_path` without metadata; *w and *h get the result's size. Errors: as nu_img_info. */
nu_err_t nu_img_thumbnail(const char *path, const struct nu_img_thumb *t, const char *out_path,
                          int64_t *w, int64_t *h, struct nu_errbuf *eb);

/* 64-bit difference hash of the image (orientation applied): the grey image reduced to 9x8,
 * one bit per horizontally adjacent pair. Near-duplicates differ in few bits. */
nu_err_t nu_img_dhash(const char *path, uint64_t *hash, struct nu_errbuf *eb);
/* Number of differing bits. */
int nu_img_hamming(uint64_t a, uint64_t b);

/* --- shared operator helpers (media.c) --- */

/* Output schema = `in` + `n` new columns; a name already in `in` is a fault at `path`. */
nu_err_t nu_media_schema_extend(const struct nu_schema *in, const char *const *names,
                                const nu_type_t *types, const bool *nullable, size_t n,
                                const char *opname, const char *path, struct nu_problems *p,
                                struct nu_schema **out, struct nu_errbuf *eb);
/* Check that column `name` of `in` exists with type `type` (fault at path otherwise). */
nu_err_t nu_media_expect_column(const struct nu_schema *in, const char *name, nu_type_t type,
                                const char *opname, const char *path, struct nu_problems *p,
                                struct nu_errbuf *eb);
/* Append a copy of row `i` of `in` to `out` (which has at least as many columns); returns the
 * new row, whose extra columns are null. */
struct nu_value *nu_media_copy_row(struct nu_batch *out, const struct nu_batch *in, size_t i);
/* The string value of column `col` of row `i` as a NUL-terminated copy in `scratch`, or NULL
 * when null. */
const char *nu_media_row_str(nu_arena_t *scratch, const struct nu_batch *in, size_t i, long col);
/* Map a per-item error: dead-letter row `i` with its message when it is the item's fault
 * (corrupt, unsupported, not found, too large, invalid), else return it for a retry. */
nu_err_t nu_media_item_error(const struct nu_op_batch_ctx *ctx, const struct nu_batch *in, size_t i,
                             nu_err_t rc, struct nu_errbuf *item_eb, struct nu_errbuf *eb);
/* SHA-256 (hex) and size of local file `path`. */
nu_err_t nu_media_hash_file(const char *path, char hex[65], int64_t *size, struct nu_errbuf *eb);

/* Read number field `key` in [min, max] into *out (left unchanged when absent). */
bool nu_media_get_double(const json_t *obj, const char *key, double min, double max,
                         struct nu_json_path *jp, struct nu_problems *p, double *out);

/* Check the required string field "prefix": a blob store URI (file:// or s3://) under which
 * objects can be written. */
void nu_media_check_prefix(const json_t *config, struct nu_json_path *jp, struct nu_problems *p);

/*
 * The state every media operator shares: its config (strings owned) and a blob store over the
 * environment's S3 settings. `opname` names it in messages.
 */
struct nu_media_op {
    const char *opname;
    char *uri_col; /* column with the input URI ("uri") */
    char *prefix;  /* blob URI prefix for outputs, or NULL */
    char *format;  /* container or image format of outputs */
    char *column;  /* other column named by the config, or NULL */
    char *into;    /* output column name, or NULL */
    char *tmpdir;  /* where s3:// inputs and outputs are staged ($TMPDIR or /tmp) */
    double threshold, min_len;
    long long n, offset, max_bytes;
    long long width, height, quality; /* images */
    bool fill, verify;
    struct nu_blob_conf bconf;
    nu_blob_t *blob;
};

/* A new state from the checked config of `op` (whose validate() must accept it). */
nu_err_t nu_media_op_open(const struct nu_operator *op, const json_t *config,
                          struct nu_media_op **out, struct nu_errbuf *eb);
void nu_media_op_close(void *state);

/* A local path for the URI of row i (a temporary copy for s3://; *temp tells). */
nu_err_t nu_media_fetch(struct nu_media_op *m, const char *uri, char **path, bool *temp,
                        struct nu_errbuf *eb);
/* Store local file `path` content-addressed under m->prefix with extension ext: *uri (owned),
 * hex digest and size returned. */
nu_err_t nu_media_store(struct nu_media_op *m, const char *path, const char *ext,
                        const char *content_type, char **uri, char hex[65], int64_t *size,
                        struct nu_errbuf *eb);

#endif
