"""The `image_processing` task: applies a real Pillow operation to uploaded or generated images."""

import asyncio
import hashlib
import io
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError

from app.tasks.base import Reporter, TaskType
from app.tasks.params import Choice, Float, Int, Size, Uploads

SOURCE_SIZE = (640, 480)
BLUR_RADIUS = 4
OPERATIONS = ("resize", "thumbnail", "grayscale", "rotate", "blur", "convert")
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


def source_image(seed: int, number: int) -> Image.Image:
    """A gradient with a few shapes, the same for the same seed and number."""
    rng = random.Random(seed * 1_000_003 + number)
    ramp = Image.linear_gradient("L")
    across, down = ramp.rotate(90).resize(SOURCE_SIZE), ramp.resize(SOURCE_SIZE)
    image = Image.merge("RGB", (across, down, Image.new("L", SOURCE_SIZE, rng.randrange(256))))
    draw = ImageDraw.Draw(image)
    width, height = SOURCE_SIZE
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        box = (x, y, x + rng.randint(20, width // 3), y + rng.randint(20, height // 3))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def apply(image: Image.Image, operation: str, size: tuple[int, int], angle: float) -> Image.Image:
    if operation == "resize":
        return image.resize(size, Image.Resampling.LANCZOS)
    if operation == "thumbnail":
        thumbnail = image.copy()
        thumbnail.thumbnail(size)  # fits inside size, keeping the aspect ratio
        return thumbnail
    if operation == "grayscale":
        return ImageOps.grayscale(image)
    if operation == "rotate":
        return image.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    if operation == "blur":
        return image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    if operation == "convert":
        return image  # the change is the output format alone
    raise ValueError(f"unknown operation {operation!r}")


def encode(image: Image.Image, fmt: str) -> bytes:
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")  # JPEG holds neither alpha nor a palette
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def load_upload(path: Path, filename: str) -> Image.Image:
    """The upload's first frame, upright (EXIF orientation applied), in L, RGB or RGBA."""
    unreadable = f"upload {filename!r} is not a readable image"
    with path.open("rb") as file:  # opened here: Pillow's own messages would name our path
        try:
            with Image.open(file) as opened:
                image = ImageOps.exif_transpose(opened)  # a decoded copy: phone photos are often stored sideways
        except UnidentifiedImageError:
            raise ValueError(f"{unreadable}: unknown format or damaged data") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            # Pillow reports a damaged file as any of these (SyntaxError for e.g. a bad PNG chunk)
            raise ValueError(f"{unreadable}: {exc}") from None
    if image.mode in ("L", "RGB", "RGBA"):
        return image
    if image.mode in ("1", "I", "I;16", "F"):
        return image.convert("L")
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def process(load: Callable[[], Image.Image], params: dict[str, Any], target: Path) -> dict[str, Any]:
    """One image from source to written file; CPU-bound, so callers run it in a thread."""
    source = load()
    data = encode(apply(source, params["operation"], tuple(params["target_size"]), params["angle"]),
                  params["format"])
    target.write_bytes(data)
    # describe what was really written, read back from the bytes
    with Image.open(io.BytesIO(data)) as written:
        width, height, mode, fmt = written.width, written.height, written.mode, written.format
    return {"file": target.name, "source_size": list(source.size), "width": width, "height": height,
            "mode": mode, "format": fmt, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def sources(params: dict[str, Any], report: Reporter) -> list[tuple[str, Callable[[], Image.Image]]]:
    """Each image's source name and a loader for it: the uploads, or else generated images."""
    if params["uploads"]:
        uploads = [report.upload(upload_id) for upload_id in params["uploads"]]
        return [(upload.filename, partial(load_upload, upload.path, upload.filename)) for upload in uploads]
    return [("generated", partial(source_image, params["seed"], number))
            for number in range(1, params["image_count"] + 1)]


async def run(params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    extension = EXTENSIONS[params["format"]]
    todo = sources(params, report)
    images = []
    for number, (name, load) in enumerate(todo, 1):
        # between images is where a cancel takes effect: the Pillow work in its thread is not interruptible
        await report(100 * (number - 1) / len(todo), f"image {number}/{len(todo)}")
        target = report.artifacts / f"image_{number}.{extension}"
        record = await asyncio.to_thread(process, load, params, target)
        images.append({"source": name, **record})
        await report.log(f"image {number}/{len(todo)} ({name}): {record['file']} {record['width']}x"
                         f"{record['height']} {record['mode']} {record['format']}, {record['bytes']} bytes")
    await report(100, "done")
    return {
        "operation": params["operation"],
        "format": params["format"],
        "source": "upload" if params["uploads"] else "generated",
        "image_count": len(images),
        "files": [image["file"] for image in images],
        "images": images,
    }


TASK_TYPE = TaskType(
    name="image_processing",
    description="Resizes, thumbnails, greys, rotates, blurs or converts uploaded or generated images "
                "with Pillow.",
    params={
        "image_count": Int(3, minimum=1, maximum=100,
                           description="Images to generate and process (unused with uploads)."),
        "operation": Choice("resize", choices=OPERATIONS, description="The operation applied to each image."),
        "target_size": Size((256, 256), minimum=1, maximum=4096,
                            description="[width, height] for resize, or the box a thumbnail fits in."),
        "format": Choice("PNG", choices=tuple(EXTENSIONS), description="Output format of every image."),
        "angle": Float(90.0, minimum=-360.0, maximum=360.0, description="Degrees counter-clockwise, for rotate."),
        "seed": Int(42, minimum=0, maximum=2**31 - 1,
                    description="Seed of the generated images (unused with uploads)."),
        "uploads": Uploads((), kind="image", max_items=50,
                           description="Uploaded images to process (the first frame of each) instead of "
                                       "generated ones."),
    },
    run=run,
    timeout=1800.0,
)
