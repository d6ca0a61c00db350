"""What a task's function is handed while it runs (the Reporter), what it may raise, and how its
failed attempts are retried."""

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.settings import Settings


class TaskCancelled(Exception):
    """Raised by the reporter when the user asked to cancel; task code lets it propagate."""


class TransientError(Exception):
    """A failure worth another attempt (a service briefly unreachable); the task is retried with
    backoff up to its attempt limit. ConnectionError (refused, reset, …) counts as transient too."""


@dataclass(frozen=True)
class Limits:
    """The operator's bounds on what built-in task types take on (CSV_MAX_COLUMNS, IMAGE_MAX_PIXELS)."""

    csv_max_columns: int  # columns a CSV's statistics cover; the rest are counted
    image_max_pixels: int  # an image declaring more is refused before it is decoded

    @classmethod
    def of(cls, settings: "Settings") -> "Limits":
        return cls(csv_max_columns=settings.csv_max_columns, image_max_pixels=settings.image_max_pixels)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3  # every start counts, including those a crash or a timeout ended
    backoff: float = 1.0  # seconds before the second attempt
    factor: float = 2.0  # each further wait is this much longer…
    max_backoff: float = 60.0  # …up to this
    on_timeout: bool = False  # whether an attempt that ran out of time is tried again

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): exponential, full jitter
        in its upper half so that many tasks failing together do not return together."""
        ceiling = min(self.max_backoff, self.backoff * self.factor ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


class Reporter(Protocol):
    task_id: str
    data_dir: Path  # shared data directory (var/ by default); e.g. the e-mail maildir lives under it
    artifacts: Path  # this task's output files (created, emptied at each attempt); listed in its result
    smtp_url: str | None  # where e-mail goes when set (smtp://user:pass@host:port, smtps://…)
    limits: Limits

    async def __call__(self, progress: float, stage: str = "") -> None:
        """Record progress (0..100) and a short stage message; raises TaskCancelled on a cancel."""

    async def log(self, line: str) -> None:
        """Append a line to the task's log (persisted, streamed live, capped per task)."""

    def upload(self, upload_id: str) -> "UploadFile":
        """An uploaded input file (ids come from upload parameters: `CsvUpload`, `ImageUpload`; checked on submit)."""


class UploadFile(Protocol):
    id: str
    filename: str  # as the user named it; for messages only, never as a path
    path: Path
    size: int
    content_type: str


class SyncReporter(Protocol):
    """What a plain (`def`) task function gets: the same reporter, called without `await` from the
    thread or child process it runs in."""

    task_id: str
    data_dir: Path
    artifacts: Path
    smtp_url: str | None
    limits: Limits

    def __call__(self, progress: float, stage: str = "") -> None: ...

    def log(self, line: str) -> None: ...

    def upload(self, upload_id: str) -> UploadFile: ...
