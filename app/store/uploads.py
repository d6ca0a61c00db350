"""Files users upload as task inputs: streamed to disk under a size cap and a total quota, typed by
content, by id; marked when a task names them, and removed."""

import asyncio
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from app.core.errors import InvalidParameters, NotFound, PayloadTooLarge, UnsupportedMediaType
from app.settings import Settings
from app.store import upload_space
from app.store.upload_space import META

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
ID = re.compile(r"[0-9a-f]{32}")
USED = "used"  # touched each time a submit names the upload: its mtime is the last use
MAX_NAME, MAX_SUFFIX = 120, 16  # characters (a name of 256 bytes is refused by most filesystems)
ASIDE = ".removing-"  # an upload being removed is renamed to this first: gone at once for readers and the quota
PARTIAL_GRACE = 3600.0  # seconds without a byte after which an upload being written is abandoned


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


class UploadStore:
    def __init__(self, root: Path, max_bytes: int, quota_bytes: int, image_max_pixels: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.quota_bytes = quota_bytes
        self.image_max_pixels = image_max_pixels  # checked on submit (lifecycle/new_task.py)

    async def save(self, chunks: AsyncIterator[bytes], filename: str, content_type: str,
                   declared: int | None = None) -> Upload:
        """Store the file; `declared` is its Content-Length (None: sent in chunks, the cap is reserved)."""
        declared_type = content_type.split(";")[0].strip().lower()
        kind = KINDS.get(declared_type)
        if kind is None and declared_type != UNTYPED:
            raise UnsupportedMediaType(f"cannot upload {content_type or 'a file without a content type'}; "
                                       f"accepted: {', '.join([*KINDS, UNTYPED])}")
        upload_id = uuid.uuid4().hex
        folder = self.root / upload_id
        name = _safe_name(filename)
        reserved = self.max_bytes if declared is None else declared
        try:
            path = await asyncio.to_thread(upload_space.reserve, self.root, folder, name, reserved, self.quota_bytes)
            size, digest, head = await self._write(chunks, path, reserved)
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
            upload = Upload(upload_id, name, content_type, kind, size, digest, path)
            (folder / META).write_text(json.dumps(upload.describe()))
        except BaseException:  # a failed or cut-off upload leaves nothing behind, nor holds any quota
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return upload

    async def _write(self, chunks: AsyncIterator[bytes], path: Path, limit: int) -> tuple[int, str, bytes]:
        size, digest, head = 0, hashlib.sha256(), b""
        with path.open("r+b") as out:  # over the reserved length, cut to what came at the end
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"upload exceeds {limit} bytes")
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                digest.update(chunk)
                out.write(chunk)
            out.truncate(size)
        return size, digest.hexdigest(), head

    def get(self, upload_id: str) -> Upload:
        return stored(self.root, upload_id)

    def use(self, upload_id: str) -> Upload:
        """The upload, marked as used now: a removal that looked before keeps it (`remove_unless_used`)."""
        upload = self.get(upload_id)
        try:
            (self.root / upload_id / USED).touch()
        except FileNotFoundError:  # removed since
            raise NotFound(f"upload {upload_id!r} not found") from None
        return upload

    def last_used(self, upload_id: str) -> float | None:
        """When a submit last named the upload (a time.time()); None: never, or no such upload."""
        return _mtime(self.root / upload_id / USED)

    def idle(self, before: float) -> list[str]:
        """The stored uploads neither made nor used since `before` (a time.time())."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            made = _mtime(folder / META) if ID.fullmatch(folder.name) else None
            if made is not None and max(made, _mtime(folder / USED) or 0) < before:
                found.append(folder.name)
        return found

    def remove_abandoned(self, before: float) -> int:
        """Remove uploads being written (no description yet) whose files last changed before `before`:
        left by a process that died mid-upload, they would hold their reserved quota forever (and what a
        process that died while removing left aside)."""
        removed = 0
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            if folder.name.startswith(ASIDE) and (_mtime(folder) or 0) < before:  # its remover died
                shutil.rmtree(folder, ignore_errors=True)
            elif ID.fullmatch(folder.name) and not (folder / META).exists():
                changed = max((_mtime(path) or 0 for path in _files(folder)), default=_mtime(folder) or 0)
                if changed < before and self._remove(folder.name):
                    removed += 1
        return removed

    def remove(self, upload_id: str) -> bool:
        return ID.fullmatch(upload_id) is not None and self._remove(upload_id)

    def remove_unless_used(self, upload_id: str, seen: float | None) -> bool:
        """Remove the upload unless a submit used it after `seen` (its last use as the caller saw it).
        Moved aside first, then its mark read again: a submit that marked it before the move shows,
        one after it finds no upload (a 422 to its client, not a task that fails later)."""
        return self._remove(upload_id, lambda aside: _mtime(aside / USED) == seen)

    def _remove(self, upload_id: str, still_unused: Callable[[Path], bool] = lambda aside: True) -> bool:
        """Move the upload aside (gone at once for readers and the quota), then delete it, or put it
        back if `still_unused(aside)` says no. The aside name is new each time: a folder left aside by a
        remover that died (`remove_abandoned` takes it later) is never in the way."""
        aside = self.root / f"{ASIDE}{upload_id}-{uuid.uuid4().hex[:8]}"
        try:
            (self.root / upload_id).rename(aside)
        except FileNotFoundError:
            return False
        if not still_unused(aside):
            aside.rename(self.root / upload_id)
            return False
        shutil.rmtree(aside, ignore_errors=True)
        return True


def stored(root: Path, upload_id: str) -> Upload:
    """The upload `upload_id` stored under `root` (what a task's process reads: no limits needed)."""
    meta = root / upload_id / META if ID.fullmatch(upload_id) else None
    if meta is None or not meta.is_file():
        raise NotFound(f"upload {upload_id!r} not found")
    data = json.loads(meta.read_text())
    return Upload(**data, path=root / upload_id / data["filename"])


def _safe_name(filename: str) -> str:
    """The file's name on disk: path and odd characters dropped, cut to what every filesystem takes."""
    name = SAFE_NAME.sub("_", Path(filename or "upload").name).strip("._") or "upload"
    suffix = Path(name).suffix[:MAX_SUFFIX]
    return name if len(name) <= MAX_NAME else name[:MAX_NAME - len(suffix)] + suffix


def _files(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def uploads_root(data_dir: Path) -> Path:
    return data_dir / "uploads"


def upload_store(settings: Settings) -> UploadStore:
    return UploadStore(uploads_root(settings.data_dir), settings.upload_max_bytes, settings.upload_quota_bytes,
                       settings.image_max_pixels)
