/*
 * media.h — multimodal operators (layer: stage): video_probe, scene_detect, video_slice,
 * keep_every_n, hash and the image operators, over the blob store (blob.h). They live in the
 * stage layer because they link FFmpeg, libvips and libcurl, which the operators layer may not.
 *
 * Rows refer to media by URI (file:// or s3://, the claim-check pattern); each operator reads
 * the URI column named by its config ("uri" by default) and appends its own columns. Media that
 * cannot be read (corrupt, truncated, unsupported) dead-letters its row with the decoder's
 * reason; a transient store error fails the split so that it is retried.
 *
 * Thread-safety: nu_media_register() may be called from any thread, any number of times.
 */
#ifndef NU_STAGE_MEDIA_H
#define NU_STAGE_MEDIA_H

#include "nurion/operator.h"

extern const struct nu_operator nu_op_video_probe;
extern const struct nu_operator nu_op_scene_detect;
extern const struct nu_operator nu_op_video_slice;
extern const struct nu_operator nu_op_keep_every_n;
extern const struct nu_operator nu_op_hash;
extern const struct nu_operator nu_op_image_metadata;
extern const struct nu_operator nu_op_image_thumbnail;
extern const struct nu_operator nu_op_image_phash;
extern const struct nu_operator nu_op_http_fetch;

/* Add the media operators to the operator registry (idempotent; process lifetime). */
void nu_media_register(void);

#endif
