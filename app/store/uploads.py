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
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
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


def _looks_like(kind: str, head: bytes) -> bool:
    if kind == "image":
        return head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte character cut by the sniff window is fine
    return b"\x00" not in head


class UploadStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    async def save(self, chunks: AsyncIterator[bytes], filename: str, content_type: str) -> Upload:
        kind = KINDS.get(content_type.split(";")[0].strip().lower())
        if kind is None:
            raise UnsupportedMediaType(
                f"cannot upload {content_type or 'a file without a content type'}; accepted: {', '.join(KINDS)}")
        upload_id = uuid.uuid4().hex
        folder = self.root / upload_id
        folder.mkdir(parents=True)
        name = SAFE_NAME.sub("_", Path(filename or "upload").name).strip("._") or "upload"
        path = folder / name
        try:
            size, digest, head = await self._write(chunks, path)
            if size == 0:
                raise InvalidParameters("file", "is empty")
            if not _looks_like(kind, head):
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


def upload_store(settings: Settings) -> UploadStore:
    return UploadStore(settings.data_dir / "uploads", settings.upload_max_bytes)
