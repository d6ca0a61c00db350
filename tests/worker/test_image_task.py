"""The `image_processing` task: each operation on generated and uploaded images, outputs checked by
opening them with Pillow."""

import hashlib
import io
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.tasks import TaskCancelled
from app.tasks.builtin.image_processing import load_upload
from tests.support.task_runs import DEFAULT_LIMITS, FakeUpload, run, write_upload

# --- image_processing -------------------------------------------------------------------------

def open_outputs(result: dict[str, Any], folder: Path) -> list[Image.Image]:
    """Every output, opened from its file with Pillow after checking it against its record."""
    images = []
    for record, name in zip(result["images"], result["files"], strict=True):
        assert record["file"] == name
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"] and len(data) == record["bytes"]
        image = Image.open(io.BytesIO(data))
        image.load()
        assert (image.width, image.height, image.mode, image.format) == (
            record["width"], record["height"], record["mode"], record["format"])
        images.append(image)
    assert sorted(path.name for path in folder.iterdir()) == sorted(result["files"])
    return images


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "check"), [
    ({"operation": "resize", "target_size": [100, 60]}, lambda image: image.size == (100, 60)),
    ({"operation": "thumbnail", "target_size": 100}, lambda image: image.size == (100, 75)),
    ({"operation": "grayscale"}, lambda image: image.mode == "L" and image.size == (640, 480)),
    ({"operation": "rotate", "angle": 90}, lambda image: image.size == (480, 640)),
    ({"operation": "blur", "format": "BMP"}, lambda image: image.size == (640, 480) and image.format == "BMP"),
    ({"operation": "convert", "format": "JPEG"}, lambda image: image.format == "JPEG" and image.mode == "RGB"),
    ({"operation": "convert", "format": "WEBP"}, lambda image: image.format == "WEBP"),
    ({"operation": "grayscale", "format": "GIF"}, lambda image: image.format == "GIF"),
])
async def test_image_outputs_open_with_what_was_asked(raw: dict[str, Any], check: Any, tmp_path: Path) -> None:
    result, report = await run("image_processing", tmp_path, image_count=2, **raw)
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}[raw.get("format", "PNG")]
    assert result["files"] == [f"image_1.{extension}", f"image_2.{extension}"]
    images = open_outputs(result, report.artifacts)
    assert all(check(image) for image in images)
    assert all(record["source_size"] == [640, 480] for record in result["images"])
    assert [record["source"] for record in result["images"]] == ["generated"] * 2 and len(report.lines) == 2


@pytest.mark.asyncio
async def test_images_are_deterministic_by_seed_and_index(tmp_path: Path) -> None:
    first, _ = await run("image_processing", tmp_path / "a", image_count=2, seed=5)
    second, _ = await run("image_processing", tmp_path / "b", image_count=2, seed=5)
    other, _ = await run("image_processing", tmp_path / "c", image_count=2, seed=6)
    hashes = [record["sha256"] for record in first["images"]]
    assert hashes == [record["sha256"] for record in second["images"]]
    assert hashes[0] != hashes[1] and hashes != [record["sha256"] for record in other["images"]]


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(mode: str, size: tuple[int, int]) -> Image.Image:
    """A gradient with a square, in the given mode: some structure for the operations to work on."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    image.paste(Image.new(mode, (size[0] // 3, size[1] // 3), "white" if mode != "RGBA" else (200, 30, 30, 0)),
                (size[0] // 4, size[1] // 4))
    return image


@pytest.fixture
def photos(tmp_path: Path) -> tuple[FakeUpload, ...]:
    """Uploads as users send them, and the upright size each one shows at."""
    folder = tmp_path / "uploads"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored sideways, shown rotated a quarter turn (a phone photo)
    return (
        write_upload(folder, "holiday.jpg", encoded(picture("RGB", (320, 200)), "JPEG", quality=85), "image/jpeg"),
        write_upload(folder, "logo.png", encoded(picture("RGBA", (120, 160)), "PNG"), "image/png"),
        write_upload(folder, "scan.gif", encoded(picture("L", (200, 200)).convert("P"), "GIF"), "image/gif"),
        write_upload(folder, "portrait.jpg", encoded(picture("RGB", (300, 200)), "JPEG", exif=exif), "image/jpeg"),
    )


SHOWN = {"holiday.jpg": (320, 200), "logo.png": (120, 160), "scan.gif": (200, 200), "portrait.jpg": (200, 300)}


def within_box_keeping_aspect(image: Image.Image, shown: tuple[int, int], box: int) -> bool:
    width, height = image.size
    return max(width, height) == box and abs(width / height - shown[0] / shown[1]) < 0.02


@pytest.mark.asyncio
@pytest.mark.parametrize(("raw", "check"), [
    ({"operation": "resize", "target_size": [100, 60]}, lambda image, shown: image.size == (100, 60)),
    ({"operation": "thumbnail", "target_size": 100},
     lambda image, shown: within_box_keeping_aspect(image, shown, 100)),
    ({"operation": "grayscale"}, lambda image, shown: image.mode == "L" and image.size == shown),
    ({"operation": "rotate", "angle": 90}, lambda image, shown: image.size == shown[::-1]),
    ({"operation": "blur"}, lambda image, shown: image.size == shown and image.mode in ("L", "RGB", "RGBA")),
    ({"operation": "convert", "format": "JPEG"},
     lambda image, shown: image.format == "JPEG" and image.mode in ("RGB", "L") and image.size == shown),
    ({"operation": "convert", "format": "WEBP"}, lambda image, shown: image.format == "WEBP" and image.size == shown),
])
async def test_uploaded_images_are_processed(raw: dict[str, Any], check: Any, tmp_path: Path,
                                             photos: tuple[FakeUpload, ...]) -> None:
    result, report = await run("image_processing", tmp_path, files=photos, uploads=[p.id for p in photos], **raw)
    assert (result["source"], result["image_count"]) == ("upload", 4)
    images = open_outputs(result, report.artifacts)
    for record, image in zip(result["images"], images, strict=True):
        shown = SHOWN[record["source"]]
        assert record["source_size"] == list(shown)
        assert check(image, shown), (record["source"], image.size, image.mode)
    assert [record["source"] for record in result["images"]] == list(SHOWN)
    assert report.lines[2].startswith("image 3/4 (scan.gif): image_3.")


@pytest.mark.asyncio
async def test_transparency_is_kept_where_the_format_holds_it(tmp_path: Path, photos: tuple[FakeUpload, ...]) -> None:
    result, report = await run("image_processing", tmp_path, files=photos[1:2], uploads=[photos[1].id],
                               operation="resize", target_size=[60, 80])
    (image,) = open_outputs(result, report.artifacts)
    assert image.mode == "RGBA" and image.getextrema()[3][0] == 0  # some pixels still fully transparent


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "data"), [
    ("photo.png", os.urandom(2000)),
    ("fake.png", b"\x89PNG\r\n\x1a\n" + os.urandom(500)),
    ("cut.jpg", encoded(picture("RGB", (320, 200)), "JPEG")[:1500]),
    ("notes.txt", b"not a picture at all\n"),
])
async def test_an_upload_that_is_not_an_image_fails_naming_it(name: str, data: bytes, tmp_path: Path,
                                                              photos: tuple[FakeUpload, ...]) -> None:
    bad = write_upload(tmp_path / "uploads", name, data, "image/png")
    with pytest.raises(ValueError, match=f"^upload '{name}' is not a readable image: .") as caught:
        await run("image_processing", tmp_path, files=(photos[0], bad), uploads=[photos[0].id, bad.id])
    assert str(tmp_path) not in str(caught.value)  # the user's name for the file, never where it is stored


@pytest.mark.asyncio
async def test_an_image_over_the_pixel_budget_is_refused_before_it_is_decoded(
        tmp_path: Path, photos: tuple[FakeUpload, ...]) -> None:
    """In the task too (IMAGE_MAX_PIXELS may have been lowered since the submit): its header alone is read."""
    big = write_upload(tmp_path / "uploads", "wide.png", encoded(picture("RGB", (400, 200)), "PNG"), "image/png")
    message = (r"^upload 'wide.png' is an image of 400 × 200 = 80,000 pixels, more than IMAGE_MAX_PIXELS "
               r"\(70,000\) allows$")
    with pytest.raises(ValueError, match=message):  # photos[0], 320 × 200, is within
        await run("image_processing", tmp_path, files=(photos[0], big), uploads=[photos[0].id, big.id],
                  limits=replace(DEFAULT_LIMITS, image_max_pixels=70_000))
    result, _ = await run("image_processing", tmp_path, files=(big,), uploads=[big.id],
                          limits=replace(DEFAULT_LIMITS, image_max_pixels=80_000))
    assert result["images"][0]["source_size"] == [400, 200]


def test_a_large_jpeg_is_decoded_at_the_scale_a_resize_needs(tmp_path: Path) -> None:
    """4000 × 3000 for a 100-pixel thumbnail: decoded at 1/8 scale (500 × 375, 1/64 of the memory)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(picture("RGB", (4000, 3000)), "JPEG", exif=exif)
    photo = write_upload(tmp_path / "uploads", "big.jpg", data, "image/jpeg")
    image, size = load_upload(photo.path, photo.filename, 50_000_000, box=100)
    assert (image.size, size) == ((375, 500), (3000, 4000))  # upright, and the upright full size
    assert load_upload(photo.path, photo.filename, 50_000_000, box=None)[0].size == (3000, 4000)


@pytest.mark.asyncio
async def test_a_cancel_stops_between_images(tmp_path: Path, photos: tuple[FakeUpload, ...]) -> None:
    with pytest.raises(TaskCancelled):  # each image reports three steps: the 7th report is the third image's first
        await run("image_processing", tmp_path, files=photos, uploads=[p.id for p in photos], cancel_after=6)
    assert sorted(path.name for path in (tmp_path / "artifacts" / "task0123abcd").iterdir()) == [
        "image_1.png", "image_2.png"]
