"""What a running task reports through: progress, log lines, its cancellation check, its files."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import OUTAGES, stop_if_cancelled
from app.lifecycle.attempts import Attempts
from app.lifecycle.groups import LogBatch
from app.store.uploads import Upload, UploadStore
from app.tasks import TaskCancelled
from app.tasks.runtime import Limits

log = logging.getLogger(__name__)

FLAG_CHECK_INTERVAL = 1.0  # seconds between reads of a running task's cancel flag
MAX_LINE = 2000  # characters kept of one log line


@dataclass
class Attempt:
    """One attempt a worker runs: its task, dispatch and asyncio task, and what its reporter learnt."""

    task_id: str
    dispatch: int
    runner: "asyncio.Task[Any]"
    number: int  # the task's attempts count once this one started
    code_done: Callable[[], None]  # its code returned: the worker's slot is free for another
    cancelled: bool = False
    progress: float = 0.0


class Superseded(Exception):
    """This attempt no longer owns its task (it was presumed lost and the task moved on): stop."""


class ProgressReporter:
    """Progress and log lines are persisted and published at most once per `interval` per task
    (the latest progress wins; log lines are batched, none dropped below the cap); status changes
    are never throttled. The cancel flag in Redis is read here too, at most once a second: the
    backstop for a cancel signal the worker missed.
    """

    def __init__(self, attempt: Attempt, moves: Attempts, *, data_dir: Path, artifacts: Path,
                 uploads: UploadStore, smtp_url: str | None, interval: float, log_cap: int,
                 logged_before: int, limits: Limits) -> None:
        self.task_id = attempt.task_id
        self.data_dir = data_dir
        self.folder = artifacts  # made when the task first asks for it (`artifacts`)
        self.smtp_url = smtp_url
        self.limits = limits
        self._attempt = attempt
        self._moves = moves
        self._uploads = uploads
        self._interval = interval
        # The first progress and log lines wait one interval too: a short task shows RUNNING and then
        # its outcome, with its log written once, instead of writing and publishing 0 % on the way.
        self._last_flush = self._last_flag_check = self._last_log_flush = time.monotonic()
        self._log_room = max(0, log_cap - logged_before)
        self._log_cap = log_cap
        self._pending: list[tuple[datetime, str]] = []

    async def __call__(self, progress: float, stage: str = "") -> None:
        now = time.monotonic()
        if not self._attempt.cancelled and now - self._last_flag_check >= FLAG_CHECK_INTERVAL:
            self._last_flag_check = now
            self._attempt.cancelled = await self._flagged()
        if self._attempt.cancelled:
            raise TaskCancelled()
        self._attempt.progress = min(100.0, max(0.0, float(progress)))
        if now - self._last_flush >= self._interval:
            self._last_flush = now
            try:
                moved = await self._moves.progress(self.task_id, self._attempt.dispatch, self._attempt.progress, stage)
            except OUTAGES as exc:
                stop_if_cancelled()
                log.warning("task %s: progress not recorded (%s); the work goes on", self.task_id, exc)
                return
            if moved is None:
                raise Superseded()

    async def _flagged(self) -> bool:
        try:
            return bool(await self._moves.redis.exists(keys.cancel_key(self.task_id)))
        except OUTAGES:
            stop_if_cancelled()
            return False  # Redis is away: the signal and the flag are checked again once it is back

    async def log(self, line: str) -> None:
        if self._log_room <= 0:
            return
        self._log_room -= 1
        self._pending.append((utcnow(), line[:MAX_LINE]))
        if self._log_room == 0:
            self._pending.append((utcnow(), f"[log truncated: this task keeps at most {self._log_cap} lines]"))
        if time.monotonic() - self._last_log_flush >= self._interval:
            await self.flush_logs()

    def take_logs(self) -> LogBatch | None:
        """The lines not written yet, to be written with the attempt's end (one trip instead of two)."""
        if not self._pending:
            return None
        taken, self._pending = self._pending, []
        return self._attempt.number, taken

    async def flush_logs(self) -> None:
        self._last_log_flush = time.monotonic()
        if self._pending:
            try:
                await self._moves.log(self.task_id, self._attempt.number, self._pending)
            except OUTAGES as exc:
                stop_if_cancelled()
                log.warning("task %s: log lines kept for later (%s)", self.task_id, exc)
                return
            self._pending = []

    @property
    def artifacts(self) -> Path:
        """The attempt's folder for files to download: made at the first use, most tasks write none."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    def upload(self, upload_id: str) -> Upload:
        return self._uploads.get(upload_id)
