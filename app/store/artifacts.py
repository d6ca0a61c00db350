"""Files a task produces: one directory per task under the data directory, listed and served by name
(and the files a task keeps across its attempts, removed with it)."""

import mimetypes
import re
import shutil
from pathlib import Path
from typing import Any

from app.core.wire import dumps, utf8_size

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
RESULT_FILE = "result.json"  # a result too large to keep in its task's row
KEPT_VALUE = 200  # bytes of JSON of a top-level value an oversized result's summary keeps


def directory(data_dir: Path, task_id: str) -> Path:
    return data_dir / "artifacts" / task_id


def state_directory(data_dir: Path, task_id: str) -> Path:
    """A task's own files that outlive its attempts (an e-mail task's journal of deliveries), never
    served; removed with the task."""
    return data_dir / "task-state" / task_id


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
    shutil.rmtree(state_directory(data_dir, task_id), ignore_errors=True)


def kept_result(result: dict[str, Any], folder: Path, cap: int) -> dict[str, Any]:
    """The result as stored with its task: itself, or when its JSON is over `cap` bytes (RESULT_MAX_BYTES)
    the file result.json among its artifacts and a summary: its small top-level values and the names of
    the others. A large result is kept whole without making every list page and live frame carry it."""
    encoded = dumps(result)
    size = utf8_size(encoded)
    if size <= cap:
        return result
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULT_FILE).write_text(encoded)
    small = {key: value for key, value in result.items() if len(dumps(value)) <= KEPT_VALUE}
    return {**small, "result_file": RESULT_FILE, "result_bytes": size,
            "result_omitted": [key for key in result if key not in small][:100]}
