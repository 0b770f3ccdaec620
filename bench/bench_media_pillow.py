"""Thumbnail baseline for bench_media.c: the same thumbnails as image_thumbnail (fit inside
256x256 with a Lanczos-3 filter after a box pre-reduction for large factors, EXIF orientation
applied, JPEG quality 85 with 4:2:0 chroma, no metadata, stored under the SHA-256 of the bytes)
with Python and Pillow, in one process, reading the same files. Prints
"<images> <seconds> <cpu seconds>" (the loop only, interpreter start excluded).

usage: bench_media_pillow.py OUT_DIR IMAGE...
"""
import hashlib
import io
import os
import sys
import time

from PIL import Image, ImageOps


def main() -> int:
    out, paths = sys.argv[1], sys.argv[2:]
    t0, c0 = time.perf_counter(), time.process_time()
    for path in paths:
        with Image.open(path) as im:
            # libvips's thumbnail: shrink-on-load (Pillow's JPEG draft mode), a box reduction
            # down to twice the target (reducing_gap), then Lanczos-3
            im.thumbnail((256, 256), Image.Resampling.LANCZOS, reducing_gap=2.0)
            im = ImageOps.exif_transpose(im)
            if im.mode not in ("RGB", "L"):  # libvips keeps grey images grey too
                im = im.convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85, subsampling="4:2:0")
            data = buf.getvalue()
            with open(os.path.join(out, hashlib.sha256(data).hexdigest() + ".jpg"), "wb") as f:
                f.write(data)
    print(f"{len(paths)} {time.perf_counter() - t0:.6f} {time.process_time() - c0:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
