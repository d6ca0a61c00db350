"""Running one task attempt inside a worker: claim, execute with progress and cancel, record the end."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from app import keys
from app.lifecycle import TaskLifecycle
from app.status import Status
from app.tasks import TASK_TYPES
from app.tasks.base import TaskCancelled
from app.wire import TaskDict

log = logging.getLogger(__name__)

FLAG_CHECK_INTERVAL = 1.0  # seconds between reads of a running task's cancel flag


@dataclass
class Attempt:
    task_id: str
    dispatch: int
    runner: "asyncio.Task[Any]"
    cancelled: bool = False
    progress: float = 0.0
    started: float = field(default_factory=time.monotonic)


class ProgressReporter:
    """What a task type reports through; also its cancellation check between steps.

    Progress is persisted and published at most once per `interval` per task (the latest wins);
    status changes are never throttled. The cancel flag in Redis is also read here, at most once a
    second: the backstop for a cancel signal the worker missed.
    """

    def __init__(self, attempt: Attempt, lifecycle: TaskLifecycle, data_dir: Path, interval: float) -> None:
        self.task_id = attempt.task_id
        self.data_dir = data_dir
        self._attempt = attempt
        self._lifecycle = lifecycle
        self._interval = interval
        self._last_flush = 0.0
        self._last_flag_check = time.monotonic()

    async def __call__(self, progress: float, stage: str = "") -> None:
        now = time.monotonic()
        if not self._attempt.cancelled and now - self._last_flag_check >= FLAG_CHECK_INTERVAL:
            self._last_flag_check = now
            self._attempt.cancelled = bool(await self._lifecycle.redis.exists(keys.cancel_key(self.task_id)))
        if self._attempt.cancelled:
            raise TaskCancelled()
        self._attempt.progress = min(100.0, max(0.0, float(progress)))
        if now - self._last_flush >= self._interval:
            self._last_flush = now
            await self._lifecycle.progress(self.task_id, self._attempt.progress, stage)


class Runner:
    def __init__(self, lifecycle: TaskLifecycle, redis: Redis, worker_id: str, *, data_dir: Path,
                 progress_interval: float) -> None:
        self.lifecycle = lifecycle
        self.redis = redis
        self.worker_id = worker_id
        self.data_dir = data_dir
        self.progress_interval = progress_interval
        self.attempts: dict[str, Attempt] = {}

    def running(self) -> list[str]:
        return list(self.attempts)

    def cancel(self, task_id: str) -> None:
        """A cancel request for a task this worker may be running: flag it and interrupt its await."""
        attempt = self.attempts.get(task_id)
        if attempt is not None and not attempt.cancelled:
            attempt.cancelled = True
            attempt.runner.cancel()

    async def run(self, task_id: str, dispatch: int) -> dict[str, Any]:
        task = await self.lifecycle.start(task_id, dispatch, self.worker_id)
        if task is None:
            return {"task_id": task_id, "dispatch": dispatch, "outcome": "stale"}
        current = asyncio.current_task()
        assert current is not None
        attempt = Attempt(task_id, dispatch, current)
        self.attempts[task_id] = attempt
        try:
            attempt.cancelled = bool(await self.redis.exists(keys.cancel_key(task_id)))
            ended = await self._execute(task, attempt)
        finally:
            del self.attempts[task_id]
        return {"task_id": task_id, "dispatch": dispatch, "outcome": ended["status"] if ended else "lost"}

    async def _execute(self, task: TaskDict, attempt: Attempt) -> TaskDict | None:
        kind = TASK_TYPES[task["task_type"]]
        report = ProgressReporter(attempt, self.lifecycle, self.data_dir, self.progress_interval)
        try:
            if attempt.cancelled:
                raise TaskCancelled()
            async with asyncio.timeout(kind.timeout) as deadline:
                result = await kind.run(dict(task["parameters"]), report)
        except TaskCancelled:
            return await self._end(attempt, Status.CANCELLED)
        except asyncio.CancelledError:
            if not attempt.cancelled and not await self.redis.exists(keys.cancel_key(attempt.task_id)):
                await self.lifecycle.hand_back(attempt.task_id, attempt.dispatch, "worker stopped; queued again")
                raise
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()  # the cancel was the user's, fully handled here
            return await self._end(attempt, Status.CANCELLED)
        except TimeoutError:
            if not deadline.expired():
                return await self._end(attempt, Status.FAILED, error="TimeoutError: timed out")
            return await self._end(attempt, Status.FAILED, error=f"timed out after {kind.timeout:g} s")
        except Exception as exc:
            log.info("task %s failed: %r", attempt.task_id, exc)
            return await self._end(attempt, Status.FAILED, error=f"{exc.__class__.__name__}: {exc}")
        return await self._end(attempt, Status.SUCCESS, result=result)

    async def _end(self, attempt: Attempt, status: Status, *, result: dict[str, Any] | None = None,
                   error: str | None = None) -> TaskDict | None:
        return await self.lifecycle.finish(
            attempt.task_id, status, progress=attempt.progress, result=result, error=error
        )
