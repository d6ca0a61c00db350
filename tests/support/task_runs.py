"""A task type's function run directly, as a worker would run it, with a stand-in reporter that records
every progress report (with its time), log line and upload asked for."""

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.settings import load_settings
from app.tasks import TaskCancelled, load_task_types
from app.tasks.runtime import Limits

TASK_TYPES = load_task_types()


@dataclass
class FakeUpload:
    id: str
    filename: str
    path: Path
    size: int
    content_type: str


def write_upload(folder: Path, filename: str, data: bytes, content_type: str) -> FakeUpload:
    """A file as the upload store would hand it over: stored under its id, named by the user."""
    upload_id = uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / upload_id
    path.write_bytes(data)
    return FakeUpload(upload_id, filename, path, len(data), content_type)


DEFAULT_LIMITS = Limits.of(load_settings({}))  # the limits of a worker with no settings given


class FakeReporter:
    def __init__(self, data_dir: Path, cancel_after: int | None = None, smtp_url: str | None = None,
                 uploads: tuple[FakeUpload, ...] = (), limits: Limits = DEFAULT_LIMITS) -> None:
        self.task_id = "task0123abcd"
        self.data_dir = data_dir
        self.artifacts = data_dir / "artifacts" / self.task_id
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.smtp_url = smtp_url
        self.limits = limits
        self.uploads = {upload.id: upload for upload in uploads}
        self.calls: list[tuple[float, str]] = []
        self.times: list[float] = []  # time.monotonic() of each call
        self.lines: list[str] = []
        self.cancel_after = cancel_after

    async def __call__(self, progress: float, stage: str = "") -> None:
        if self.cancel_after is not None and len(self.calls) >= self.cancel_after:
            raise TaskCancelled()
        self.calls.append((progress, stage))
        self.times.append(time.monotonic())

    async def log(self, line: str) -> None:
        self.lines.append(line)

    def upload(self, upload_id: str) -> FakeUpload:
        return self.uploads[upload_id]


async def run(task_type: str, tmp_path: Path, *, smtp_url: str | None = None, files: tuple[FakeUpload, ...] = (),
              cancel_after: int | None = None, limits: Limits = DEFAULT_LIMITS,
              **raw: Any) -> tuple[dict[str, Any], FakeReporter]:
    kind = TASK_TYPES[task_type]
    report = FakeReporter(tmp_path, cancel_after, smtp_url, files, limits)
    result = await kind.run(kind.validate(raw), report)
    json.dumps(result, allow_nan=False)  # what the store and the wire will do with it
    return result, report
