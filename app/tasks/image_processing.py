"""The `image_processing` task: generates images and applies a real Pillow operation to each."""

import asyncio
import hashlib
import io
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from app.params import Choice, Float, Int, Size
from app.tasks.base import Reporter, TaskType

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


def process(params: dict[str, Any], number: int, target: Path) -> dict[str, Any]:
    """One image from source to written file; CPU-bound, so callers run it in a thread."""
    source = source_image(params["seed"], number)
    data = encode(apply(source, params["operation"], tuple(params["target_size"]), params["angle"]),
                  params["format"])
    target.write_bytes(data)
    # describe what was really written, read back from the bytes
    with Image.open(io.BytesIO(data)) as written:
        width, height, mode, fmt = written.width, written.height, written.mode, written.format
    return {"file": target.name, "source_size": list(source.size), "width": width, "height": height,
            "mode": mode, "format": fmt, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def run(params: dict[str, Any], report: Reporter) -> dict[str, Any]:
    count: int = params["image_count"]
    extension = EXTENSIONS[params["format"]]
    folder = report.data_dir / "artifacts" / report.task_id
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    images = []
    for number in range(1, count + 1):
        await report(100 * (number - 1) / count, f"image {number}/{count}")
        images.append(await asyncio.to_thread(process, params, number, folder / f"image_{number}.{extension}"))
    await report(100, "done")
    return {
        "operation": params["operation"],
        "format": params["format"],
        "image_count": count,
        "artifacts_dir": f"artifacts/{report.task_id}",
        "files": [image["file"] for image in images],
        "images": images,
    }


TASK_TYPE = TaskType(
    name="image_processing",
    description="Generates images and resizes, thumbnails, greys, rotates, blurs or converts them with Pillow.",
    params={
        "image_count": Int(3, minimum=1, maximum=100, description="Images to generate and process."),
        "operation": Choice("resize", choices=OPERATIONS, description="The operation applied to each image."),
        "target_size": Size((256, 256), minimum=1, maximum=4096,
                            description="[width, height] for resize, or the box a thumbnail fits in."),
        "format": Choice("PNG", choices=tuple(EXTENSIONS), description="Output format of every image."),
        "angle": Float(90.0, minimum=-360.0, maximum=360.0, description="Degrees counter-clockwise, for rotate."),
        "seed": Int(42, minimum=0, maximum=2**31 - 1, description="Seed of the generated images."),
    },
    run=run,
    timeout=1800.0,
)
