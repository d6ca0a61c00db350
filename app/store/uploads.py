"""Files users upload as task inputs: streamed to disk under a size cap, typed by content, by id."""

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

from app.core.errors import InvalidParameters, NotFound, PayloadTooLarge, UnsupportedMediaType
from app.settings import Settings

# Declared content type → kind. The bytes are checked against the kind as well.
KINDS = {
    "text/csv": "csv", "application/csv": "csv", "text/plain": "csv", "application/vnd.ms-excel": "csv",
    "image/png": "image", "image/jpeg": "image", "image/gif": "image", "image/webp": "image",
    "image/bmp": "image",
}
UNTYPED = "application/octet-stream"  # bytes of no declared type: the kind is told from the bytes themselves
# An image's first bytes → its type (WebP: "RIFF", four bytes of size, then "WEBP").
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
                    b"GIF89a": "image/gif", b"BM": "image/bmp"}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 120  # characters of a stored file name: well under a file system's 255-byte limit on one
ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Upload:
    id: str
    filename: str
    content_type: str
    kind: str
    size: int
    sha256: str
    path: Path

    def describe(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "path"}


def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in IMAGE_SIGNATURES.items() if head.startswith(signature)), None)


def _sniffed(head: bytes) -> tuple[str, str] | None:
    """(kind, content type) of untyped bytes: UTF-8 text as CSV, else an image by its signature (text
    first: a CSV may start like a signature, "BMW,…"; an image's header holds bytes no text has)."""
    if _looks_like("csv", head):
        return "csv", "text/csv"
    return ("image", image) if (image := _image_type(head)) else None


def _looks_like(kind: str, head: bytes) -> bool:
    if kind == "image":
        return _image_type(head) is not None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte character cut by the sniff window is fine
    return b"\x00" not in head


def _safe_name(filename: str) -> str:
    """The name an upload is stored (and shown) under: ASCII letters, digits and `._-` only, and at most
    MAX_NAME characters, a long one cut in its stem so that its extension stays."""
    name = SAFE_NAME.sub("_", Path(filename or "upload").name).strip("._") or "upload"
    if len(name) <= MAX_NAME:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 16:
        return name[:MAX_NAME]
    return f"{stem[:MAX_NAME - len(extension) - 1]}.{extension}"


class UploadStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    async def save(self, chunks: AsyncIterator[bytes], filename: str, content_type: str) -> Upload:
        declared = content_type.split(";")[0].strip().lower()
        kind = KINDS.get(declared)
        if kind is None and declared != UNTYPED:
            raise UnsupportedMediaType(f"cannot upload {content_type or 'a file without a content type'}; "
                                       f"accepted: {', '.join([*KINDS, UNTYPED])}")
        upload_id = uuid.uuid4().hex
        folder = self.root / upload_id
        folder.mkdir(parents=True)
        name = _safe_name(filename)
        path = folder / name
        try:
            size, digest, head = await self._write(chunks, path)
            if size == 0:
                raise InvalidParameters("file", "is empty")
            if kind is None:  # untyped: what the bytes are
                if (sniffed := _sniffed(head)) is None:
                    raise UnsupportedMediaType("the file's bytes are neither an image (PNG, JPEG, GIF, WebP, BMP) "
                                               "nor UTF-8 text")
                kind, content_type = sniffed
            elif not _looks_like(kind, head):
                raise UnsupportedMediaType(f"the file's bytes are not {'an image' if kind == 'image' else 'UTF-8 text'}"
                                           f" as its content type {content_type!r} says")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        upload = Upload(upload_id, name, content_type, kind, size, digest, path)
        (folder / "upload.json").write_text(json.dumps(upload.describe()))
        return upload

    async def _write(self, chunks: AsyncIterator[bytes], path: Path) -> tuple[int, str, bytes]:
        size, digest, head = 0, hashlib.sha256(), b""
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise PayloadTooLarge(f"upload exceeds {self.max_bytes} bytes")
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        return size, digest.hexdigest(), head

    def get(self, upload_id: str) -> Upload:
        meta = self.root / upload_id / "upload.json" if ID.fullmatch(upload_id) else None
        if meta is None or not meta.is_file():
            raise NotFound(f"upload {upload_id!r} not found")
        data = json.loads(meta.read_text())
        return Upload(**data, path=self.root / upload_id / data["filename"])


def uploads_root(data_dir: Path) -> Path:
    return data_dir / "uploads"


def upload_store(settings: Settings) -> UploadStore:
    return UploadStore(uploads_root(settings.data_dir), settings.upload_max_bytes)
