"""An image's size as its header declares it, read without decoding: a few hundred bytes of PNG may
declare 13,000 × 13,000 pixels, gigabytes once decoded."""

import ctypes
import ctypes.util
import functools
import warnings
from pathlib import Path

from PIL import Image


def too_large(path: Path, filename: str, max_pixels: int) -> str | None:
    """Why the image is refused before it is decoded (more than `max_pixels`, IMAGE_MAX_PIXELS), or None
    (an unreadable file is the decoder's to describe)."""
    try:
        with warnings.catch_warnings():  # over Pillow's own warning threshold: what counts is ours
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with path.open("rb") as file, Image.open(file) as image:  # lazy: the header alone is read
                width, height = image.size
    except Image.DecompressionBombError as exc:  # over twice Pillow's threshold, refused by Image.open
        return f"upload {filename!r} is too large an image to decode ({exc})"
    except (OSError, SyntaxError, ValueError):
        return None
    if width * height <= max_pixels:
        return None
    return (f"upload {filename!r} is an image of {width} × {height} = {width * height:,} pixels, more than "
            f"IMAGE_MAX_PIXELS ({max_pixels:,}) allows")


@functools.cache
def _malloc_trim() -> "ctypes._NamedFuncPointer | None":
    name = ctypes.util.find_library("c")
    library = ctypes.CDLL(name) if name else None
    return getattr(library, "malloc_trim", None)  # glibc's; other C libraries lack it


def give_back_memory() -> None:
    """Return the freed memory of decoded images to the system. Pillow allocates an image in blocks
    of malloc; once freed, glibc keeps them for reuse (a worker held 570 MB after blurring one
    49-megapixel image) unless asked to trim its heaps, every thread's arena included."""
    if (trim := _malloc_trim()) is not None:
        trim(0)
