"""Thumbnail baseline for bench_media.c: the same thumbnails as image_thumbnail (fit inside
256x256, EXIF orientation applied, JPEG quality 85, no metadata) with Python and Pillow, in one
process. Prints "<images> <seconds> <cpu seconds>" (the loop only, interpreter start excluded).

usage: bench_media_pillow.py OUT_DIR IMAGE...
"""
import os
import sys
import time

from PIL import Image, ImageOps


def main() -> int:
    out, paths = sys.argv[1], sys.argv[2:]
    t0, c0 = time.perf_counter(), time.process_time()
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            im.thumbnail((256, 256))  # uses JPEG draft mode (shrink-on-load) where it can
            im = ImageOps.exif_transpose(im)
            if im.mode != "RGB":
                im = im.convert("RGB")
            im.save(os.path.join(out, f"t{i}.jpg"), "JPEG", quality=85)
    print(f"{len(paths)} {time.perf_counter() - t0:.6f} {time.process_time() - c0:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
