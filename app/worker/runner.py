"""Running one task attempt inside a worker: claim, execute with progress and cancel, record the end."""

import asyncio
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from app.core import keys
from app.core.errors import OUTAGES
from app.core.logs import about_task, set_attempt
from app.core.status import STOP, SUCCEED, Move, Status
from app.core.wire import TaskDict
from app.lifecycle.attempts import Attempts
from app.settings import Settings
from app.store import artifacts
from app.store.uploads import UploadStore
from app.tasks import RetryPolicy, TaskCancelled, TaskType, TaskTypes, TransientError
from app.tasks.executors import ChildFailed
from app.tasks.runtime import Limits
from app.worker.reporter import Attempt, ProgressReporter, Superseded

log = logging.getLogger(__name__)

HANDED_BACK = "worker stopped; queued again"
MAX_TRACEBACK = 20_000  # characters of a failed attempt's traceback kept with the task


class Runner:
    def __init__(self, attempts: Attempts, types: TaskTypes, uploads: UploadStore, worker_id: str,
                 settings: Settings) -> None:
        self.moves = attempts
        self.types = types
        self.redis = attempts.redis
        self.uploads = uploads
        self.worker_id = worker_id
        self.settings = settings
        self.attempts: dict[str, Attempt] = {}
        # Tasks whose claim is being written (claims in flight of each), and those of them a cancel came
        # for meanwhile: it can come only once the claim is stored, maybe before the attempt is here.
        self.claiming: Counter[str] = Counter()
        self.cancelled_early: set[str] = set()
        self.completed = 0  # attempts this worker ended with SUCCESS…
        self.failed = 0  # …and with FAILED or a retry to come (shown in the workers view)

    def running(self) -> list[str]:
        return [*self.attempts, *self.claiming]

    def counts(self) -> dict[str, int]:
        return {"completed": self.completed, "failed": self.failed}

    def cancel(self, task_id: str) -> None:
        """A cancel request for a task this worker may be running: flag it and interrupt its await."""
        if task_id in self.claiming:
            self.cancelled_early.add(task_id)
        attempt = self.attempts.get(task_id)
        if attempt is not None and not attempt.cancelled:
            attempt.cancelled = True
            attempt.runner.cancel()

    async def run(self, task_id: str, dispatch: int, code_done: Callable[[], None]) -> dict[str, Any]:
        """The job of `task_id` at `dispatch`; `code_done()` once the task's code has returned (its
        outcome is then written, the worker's slot no longer needed)."""
        with about_task(task_id):  # every line this attempt causes names the task (core/logs.py)
            return await self._run(task_id, dispatch, code_done)

    async def _run(self, task_id: str, dispatch: int, code_done: Callable[[], None]) -> dict[str, Any]:
        self.claiming[task_id] += 1
        claim = asyncio.ensure_future(self.moves.start(task_id, dispatch, self.worker_id))
        try:
            task = await asyncio.shield(claim)
        except asyncio.CancelledError:
            # a stop while the claim is written (it goes on: Changes shields it): once stored, the attempt
            # is handed back, as one stopped during its run
            if await claim is not None:
                await self.moves.retry_later(task_id, dispatch, HANDED_BACK)
            raise
        finally:
            self.claiming[task_id] -= 1
            cancelled = task_id in self.cancelled_early
            if not self.claiming[task_id]:
                del self.claiming[task_id]
                self.cancelled_early.discard(task_id)
        if task is None:
            return {"task_id": task_id, "dispatch": dispatch, "outcome": "stale"}
        set_attempt(task["attempts"])
        current = asyncio.current_task()
        assert current is not None
        attempt = Attempt(task_id, dispatch, current, task["attempts"], code_done=code_done)
        # A cancel asked for during an earlier attempt stays asked (the flag and the column go together,
        # until a manual retry clears both); one asked for since the claim was stored was heard above.
        attempt.cancelled = cancelled or task["cancel_requested"]
        self.attempts[task_id] = attempt
        try:
            ended = await self._execute(task, attempt)
        finally:
            del self.attempts[task_id]
        if ended is not None and ended["status"] == Status.SUCCESS:
            self.completed += 1
        elif ended is not None and ended["status"] in (Status.FAILED, Status.RETRYING):
            self.failed += 1
        return {"task_id": task_id, "dispatch": dispatch, "outcome": ended["status"] if ended else "superseded"}

    async def _reporter(self, attempt: Attempt) -> ProgressReporter:
        settings = self.settings
        folder = artifacts.directory(settings.data_dir, attempt.task_id)
        return ProgressReporter(
            attempt, self.moves, data_dir=settings.data_dir, uploads=self.uploads,
            # a first attempt has no earlier outputs: no file system work for the many tasks that write none
            artifacts=artifacts.clear(folder) if attempt.number > 1 else folder,
            smtp_url=str(settings.smtp_url) if settings.smtp_url else None,
            limits=Limits.of(settings),
            interval=settings.progress_interval, log_cap=settings.log_lines_max,
            # a first attempt has no lines yet (a manual retry keeps counting attempts: see attempts_base)
            logged_before=await self.moves.logs.count(attempt.task_id) if attempt.number > 1 else 0,
        )

    async def _execute(self, task: TaskDict, attempt: Attempt) -> TaskDict | None:
        kind = self.types.get(task["task_type"])
        if kind is None:  # a job queued without its type (by an older version), taken by a worker that lacks it
            missing = LookupError(f"worker {self.worker_id} serves no task type {task['task_type']!r}")
            return await self._fail(task, attempt, missing, RetryPolicy(), True)
        report = await self._reporter(attempt)
        try:
            return await self._attempt(kind, task, attempt, report)
        finally:
            await asyncio.shield(report.flush_logs())

    async def _attempt(self, kind: TaskType, task: TaskDict, attempt: Attempt,
                       report: ProgressReporter) -> TaskDict | None:
        limit = task["timeout"] or kind.timeout
        try:
            if attempt.cancelled:
                raise TaskCancelled()
            async with asyncio.timeout(limit) as deadline:
                result = await kind.run(dict(task["parameters"]), report)
        except Superseded:
            return None  # the task moved on without this attempt: nothing of ours to record
        except TaskCancelled:
            return await self._end(attempt, STOP, report)
        except asyncio.CancelledError:
            if not attempt.cancelled and not await self.redis.exists(keys.cancel_key(attempt.task_id)):
                await self.moves.retry_later(attempt.task_id, attempt.dispatch, HANDED_BACK)
                raise
            current = asyncio.current_task()
            assert current is not None
            current.uncancel()  # the cancel was the user's, fully handled here
            return await self._end(attempt, STOP, report)
        except TimeoutError as exc:
            if deadline.expired():
                return await self._fail(task, attempt, exc, kind.retry, kind.retry.on_timeout, report,
                                        error=f"timed out after {limit:g} s")
            return await self._fail(task, attempt, exc, kind.retry, True, report)
        except (TransientError, ConnectionError) as exc:
            return await self._fail(task, attempt, exc, kind.retry, True, report)
        except Exception as exc:
            return await self._fail(task, attempt, exc, kind.retry, False, report)
        try:
            result = artifacts.kept_result(result, report.folder, self.settings.result_max_bytes)
        except OSError as exc:  # a large result not written (a full disk): worth another attempt
            return await self._fail(task, attempt, exc, kind.retry, True, report)
        files = artifacts.listing(report.folder)
        return await self._end(attempt, SUCCEED, report, result={**result, "artifacts": files} if files else result)

    async def _fail(self, task: TaskDict, attempt: Attempt, exc: BaseException, policy: RetryPolicy, retryable: bool,
                    report: ProgressReporter | None = None, *, error: str | None = None) -> TaskDict | None:
        """A failed attempt, its error and traceback recorded (and logged with it), with its last log lines."""
        error, text = error or describe(exc), traceback_text(exc)
        if isinstance(exc, ChildFailed):  # where it failed is in the child's traceback, not in ours
            log.warning("task %s failed: %s\n%s", attempt.task_id, error, text.rstrip())
        else:
            log.warning("task %s failed: %s", attempt.task_id, error, exc_info=exc)
        logs = report.take_logs() if report else None  # once: a write tried again carries the same lines
        attempt.code_done()
        return await _recorded(attempt, lambda: self.moves.fail(
            {**task, "attempts": attempt.number}, attempt.dispatch, error, retryable=retryable, policy=policy,
            progress=attempt.progress, traceback=text, logs=logs))

    async def _end(self, attempt: Attempt, move: Move, report: ProgressReporter, *,
                   result: dict[str, Any] | None = None) -> TaskDict | None:
        """The attempt's end recorded, with its last log lines."""
        logs = report.take_logs()  # once: a write tried again carries the same lines
        attempt.code_done()
        return await _recorded(attempt, lambda: self.moves.finish(
            attempt.task_id, attempt.dispatch, move, progress=attempt.progress, result=result, logs=logs))


async def _recorded(attempt: Attempt, write: Callable[[], Awaitable[TaskDict | None]]) -> TaskDict | None:
    """An attempt's outcome is recorded even across a Redis or database outage: the write is tried
    again with backoff until it goes through (the attempt stays this worker's meanwhile)."""
    delay = 0.2
    while True:
        try:
            return await write()
        except OUTAGES as exc:
            log.warning("task %s: outcome not recorded yet (%s); again in %.1f s", attempt.task_id, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def describe(exc: BaseException) -> str:
    """An attempt's error as its task shows it: the exception's name and message (a child process's
    exception by its own name)."""
    if isinstance(exc, ChildFailed):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def traceback_text(exc: BaseException) -> str:
    """The traceback a failed attempt keeps: where it failed (a child process's own), the end of it
    when it is longer than MAX_TRACEBACK characters."""
    text = exc.remote_traceback if isinstance(exc, ChildFailed) else "".join(traceback.format_exception(exc))
    if len(text) <= MAX_TRACEBACK:
        return text
    return f"[{len(text) - MAX_TRACEBACK} characters cut]\n" + text[-MAX_TRACEBACK:]
