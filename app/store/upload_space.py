"""The uploads' quota, kept by every process that shares the data directory on one machine: space is
reserved under a file lock before a byte is written, so concurrent uploads never take the total over it."""

import fcntl
import os
from pathlib import Path

from app.core.errors import InsufficientStorage

LOCK = ".lock"
META = "upload.json"
META_ALLOWANCE = 1024  # bytes counted for each upload's description, written after the check: always more


def used_bytes(root: Path) -> int:
    """Bytes held by the upload folders: a stored file's size, or the space reserved for one being
    written (its file is made that long first: the size counts the reservation, not the bytes written),
    and META_ALLOWANCE for its description. Folders whose name starts with a dot are being removed."""
    total = 0
    with os.scandir(root) as folders:
        for folder in folders:
            if folder.name.startswith(".") or not folder.is_dir(follow_symlinks=False):
                continue
            try:
                with os.scandir(folder.path) as files:
                    total += META_ALLOWANCE + sum(
                        entry.stat(follow_symlinks=False).st_size for entry in files if entry.name != META)
            except FileNotFoundError:  # removed while counted
                continue
    return total


def reserve(root: Path, folder: Path, name: str, size: int, quota: int) -> Path:
    """`folder/name`, made `size` bytes long, if the uploads stay within `quota` with it. The count and
    the new folder happen under one exclusive lock (flock: processes on one machine, not over NFS)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        used, needed = used_bytes(root), size + META_ALLOWANCE
        if used + needed > quota:
            raise InsufficientStorage(
                f"upload quota reached: UPLOAD_QUOTA_BYTES is {quota} bytes, {used} are used by uploads and this "
                f"one needs {needed}; delete uploads (DELETE /api/uploads/{{id}}) or wait for unused ones to expire")
        folder.mkdir()
        path = folder / name
        with path.open("wb") as out:
            out.truncate(size)
    return path
