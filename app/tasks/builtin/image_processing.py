"""The `image_processing` task: applies a real Pillow operation to uploaded or generated images."""

import asyncio
import hashlib
import io
import random
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from PIL import ExifTags, Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError
from pydantic import BeforeValidator, Field

from app.core.validation import ERROR
from app.tasks import ImageUpload, Reporter, task
from app.tasks.images import give_back_memory, too_large

SOURCE_SIZE = (640, 480)
BLUR_RADIUS = 4
Operation = Literal["resize", "thumbnail", "grayscale", "rotate", "blur", "convert"]
Format = Literal["PNG", "JPEG", "WEBP", "GIF", "BMP"]
OPERATIONS: tuple[str, ...] = Operation.__args__
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


SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that turn the image by a quarter


def load_upload(path: Path, filename: str, max_pixels: int, box: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """The upload's first frame, upright (EXIF orientation applied), in L, RGB or RGBA, and its upright
    size; refused before it is decoded when its header declares more than `max_pixels`. A JPEG is
    decoded at 1/2, 1/4 or 1/8 scale when the result still covers `box` × `box` (what a resize or a
    thumbnail needs): a fraction of the memory and the time."""
    if refused := too_large(path, filename, max_pixels):
        raise ValueError(refused)
    unreadable = f"upload {filename!r} is not a readable image"
    with path.open("rb") as file:  # opened here: Pillow's own messages would name our path
        try:
            with Image.open(file) as opened:
                sideways = opened.getexif().get(ExifTags.Base.Orientation) in SIDEWAYS
                size: tuple[int, int] = opened.size[::-1] if sideways else opened.size
                if box is not None and opened.format == "JPEG":
                    opened.draft(opened.mode, (box, box))
                image = ImageOps.exif_transpose(opened)  # a decoded copy: phone photos are often stored sideways
        except UnidentifiedImageError:
            raise ValueError(f"{unreadable}: unknown format or damaged data") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            # Pillow reports a damaged file as any of these (SyntaxError for e.g. a bad PNG chunk)
            raise ValueError(f"{unreadable}: {exc}") from None
    if image.mode in ("L", "RGB", "RGBA"):
        return image, size
    if image.mode in ("1", "I", "I;16", "F"):
        return image.convert("L"), size
    return image.convert("RGBA" if image.has_transparency_data else "RGB"), size


def write(image: Image.Image, fmt: str, target: Path) -> dict[str, Any]:
    """The image encoded and written, described as read back from the bytes written."""
    data = encode(image, fmt)
    target.write_bytes(data)
    with Image.open(io.BytesIO(data)) as written:
        width, height, mode, fmt = written.width, written.height, written.mode, written.format
    return {"file": target.name, "width": width, "height": height, "mode": mode, "format": fmt, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def generated(seed: int, number: int) -> tuple[Image.Image, tuple[int, int]]:
    image = source_image(seed, number)
    return image, image.size


Loader = Callable[[], tuple[Image.Image, tuple[int, int]]]


def sources(uploads: list[str], image_count: int, seed: int, box: int | None,
            report: Reporter) -> list[tuple[str, Loader]]:
    """Each image's source name and a loader for it (the image and its full size): the uploads, or else
    generated images."""
    if uploads:
        files = [report.upload(upload_id) for upload_id in uploads]
        limit = report.limits.image_max_pixels
        return [(file.filename, partial(load_upload, file.path, file.filename, limit, box)) for file in files]
    return [("generated", partial(generated, seed, number)) for number in range(1, image_count + 1)]


def _square(value: object) -> object:
    return [value, value] if isinstance(value, int) and not isinstance(value, bool) else value


Side = Annotated[int, Field(ge=1, le=4096)]
# [width, height], or one integer for a square
Size = Annotated[list[Side], BeforeValidator(_square), Field(min_length=2, max_length=2, json_schema_extra={
    "x-size": True, ERROR: "must be [width, height] with integers between 1 and 4096"})]


@task(timeout=1800.0)
async def image_processing(
    report: Reporter,
    image_count: Annotated[int, Field(ge=1, le=100, description="Images to generate and process (unused with "
                                                                "uploads).")] = 3,
    operation: Annotated[Operation, Field(description="The operation applied to each image.")] = "resize",
    target_size: Annotated[Size, Field(description="[width, height] for resize, or the box a thumbnail fits in.")] = [
        256, 256],
    format: Annotated[Format, Field(description="Output format of every image.")] = "PNG",
    angle: Annotated[float, Field(ge=-360.0, le=360.0, description="Degrees counter-clockwise, for rotate.")] = 90.0,
    seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="Seed of the generated images (unused with "
                                                               "uploads).")] = 42,
    uploads: Annotated[list[ImageUpload], Field(max_length=50, description="Uploaded images to process (the first "
                                                                           "frame of each) instead of generated "
                                                                           "ones.")] = [],
) -> dict[str, Any]:
    """Resizes, thumbnails, greys, rotates, blurs or converts uploaded or generated images with Pillow."""
    extension = EXTENSIONS[format]
    todo = sources(uploads, image_count, seed, max(target_size) if operation in ("resize", "thumbnail") else None,
                   report)
    images = []
    for number, (name, load) in enumerate(todo, 1):
        # Each image in three steps, CPU-bound, each in a thread, progress moving between them (their
        # costs are alike: decoding an upload or drawing a source, the operation, encoding). Between
        # steps is where a cancel takes effect: Pillow's work in its thread is not interruptible.
        def step(done: int, stage: str) -> Awaitable[None]:
            return report(100 * (number - 1 + done / 3) / len(todo), f"image {number}/{len(todo)}: {stage}")

        await step(0, "loading" if uploads else "drawing")
        source, source_size = await asyncio.to_thread(load)
        await step(1, operation)
        output = await asyncio.to_thread(apply, source, operation, (target_size[0], target_size[1]), angle)
        await step(2, f"writing {format}")
        target = report.artifacts / f"image_{number}.{extension}"
        record = {"source": name, "source_size": list(source_size),
                  **await asyncio.to_thread(write, output, format, target)}
        images.append(record)
        del source, output  # one image decoded at a time, its memory given back before the next
        await asyncio.to_thread(give_back_memory)
        await report.log(f"image {number}/{len(todo)} ({name}): {record['file']} {record['width']}x"
                         f"{record['height']} {record['mode']} {record['format']}, {record['bytes']} bytes")
    await report(100, "done")
    return {
        "operation": operation,
        "format": format,
        "source": "upload" if uploads else "generated",
        "image_count": len(images),
        "files": [image["file"] for image in images],
        "images": images,
    }
