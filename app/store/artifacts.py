"""Files a task produces: one directory per task under the data directory, listed and served by name."""

import mimetypes
import re
import shutil
from pathlib import Path
from typing import Any

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def directory(data_dir: Path, task_id: str) -> Path:
    return data_dir / "artifacts" / task_id


def clear(folder: Path) -> Path:
    """No folder left for a new attempt: outputs of an earlier attempt are not this one's."""
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def listing(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    return [
        {"name": path.name, "size": path.stat().st_size, "content_type": content_type(path.name)}
        for path in sorted(folder.iterdir()) if path.is_file() and NAME.fullmatch(path.name)
    ]


def content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def find(data_dir: Path, task_id: str, name: str) -> Path | None:
    """The artifact's path, or None: names are plain file names, never paths (no `..`, no `/`)."""
    if not NAME.fullmatch(name) or ".." in name:
        return None
    folder = directory(data_dir, task_id).resolve()
    path = (folder / name).resolve()
    return path if path.parent == folder and path.is_file() else None


def remove(data_dir: Path, task_id: str) -> None:
    shutil.rmtree(directory(data_dir, task_id), ignore_errors=True)
