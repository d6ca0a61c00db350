"""What workers (and the watchdog and reconciler) do to tasks: claim an attempt, report on it, end
it — with success, failure, a retry later, or a hand-back — recover attempts that were lost, and
queue again a task whose job was lost.

Every move after the claim is guarded by the attempt's dispatch number too: an attempt that lost
its task (its worker was presumed dead and the task runs elsewhere) can no longer change it.
"""

from datetime import datetime, timedelta
from typing import Any

from app.core import keys
from app.core.clock import utcnow
from app.core.status import FAIL, FINAL, PROGRESS, REQUEUE, RETRY_LATER, START, STOP, SUCCEED, Move, Status
from app.core.wire import TaskDict, entry, logs_frame
from app.lifecycle.changes import Changes
from app.lifecycle.groups import LogBatch
from app.tasks import RetryPolicy


def budget(task: TaskDict, policy: RetryPolicy) -> tuple[int, int]:
    """(attempts made since the last manual retry, attempts allowed)."""
    made = task["attempts"] - (task["attempts_base"] or 0)
    return made, task["max_attempts"] or policy.max_attempts


class Attempts:
    def __init__(self, changes: Changes) -> None:
        self.changes = changes
        self.store = changes.store
        self.logs = changes.stores.logs
        self.redis = changes.redis

    async def start(self, task_id: str, dispatch: int, worker: str) -> TaskDict | None:
        """Claim a queued task for this dispatch; None when the job is stale or the task gone."""
        values = {"started_at": utcnow(), "worker": worker, "stage": "started",
                  "attempts": self.store.incremented("attempts"), "next_run_at": None, "completed_at": None}
        return await self.changes.update(task_id, START, values, entry(Status.RUNNING, worker=worker),
                                         dispatch=dispatch)

    async def progress(self, task_id: str, dispatch: int, progress: float, stage: str) -> TaskDict | None:
        return await self.changes.update(task_id, PROGRESS, {"progress": progress, "stage": stage[:200]},
                                         dispatch=dispatch)

    async def log(self, task_id: str, attempt: int, lines: list[tuple[datetime, str]]) -> None:
        stored = await self.logs.append(task_id, attempt, lines)
        await self.redis.publish(keys.LOGS, f"{task_id}|{logs_frame(task_id, stored)}")

    async def finish(
        self, task_id: str, dispatch: int | None, move: Move, *, progress: float,
        result: dict[str, Any] | None = None, error: str | None = None, traceback: str | None = None,
        logs: LogBatch | None = None,
    ) -> TaskDict | None:
        """End a running attempt (SUCCEED, FAIL or STOP), with its last log lines; None if it was not
        this attempt's."""
        assert move.target in FINAL and move.sources == {Status.RUNNING}, move
        status = move.target
        values: dict[str, Any] = {"completed_at": utcnow(), "stage": status.value.lower(),
                                  "progress": 100.0 if move == SUCCEED else progress}
        if move == SUCCEED:  # an earlier attempt's error is history now (its timeline entry keeps it)
            values.update(result_data=result, error_message=None, error_traceback=None)
        if error is not None:
            values.update(error_message=error, error_traceback=traceback)
        timeline = entry(status, message=error) if error else entry(status)
        return await self.changes.update(task_id, move, values, timeline, dispatch=dispatch, logs=logs)

    async def fail(self, task: TaskDict, dispatch: int, error: str, *, retryable: bool, policy: RetryPolicy,
                   progress: float, traceback: str | None = None, logs: LogBatch | None = None) -> TaskDict | None:
        """A failed attempt (its traceback kept, when it raised): queued again after a backoff while the
        budget lasts, else FAILED."""
        made, allowed = budget(task, policy)
        if retryable and made < allowed:
            delay = policy.delay(made)
            return await self.retry_later(task["id"], dispatch, f"attempt {made} failed: {error}",
                                          delay=delay, error=error, traceback=traceback, logs=logs)
        final = f"failed after {made} attempts: {error}" if made > 1 else error
        return await self.finish(task["id"], dispatch, FAIL, progress=progress, error=final, traceback=traceback,
                                 logs=logs)

    async def retry_later(self, task_id: str, dispatch: int, reason: str, *, delay: float = 0.0,
                          error: str | None = None, traceback: str | None = None,
                          logs: LogBatch | None = None) -> TaskDict | None:
        """A running attempt that failed (or was handed back by a stopping worker): RETRYING as a new
        dispatch, enqueued to run after `delay` seconds."""
        values: dict[str, Any] = {"dispatch": dispatch + 1, "stage": reason[:200], "worker": None,
                                  "next_run_at": utcnow() + timedelta(seconds=delay)}
        if error is not None:
            values.update(error_message=error, error_traceback=traceback)
        task = await self.changes.update(task_id, RETRY_LATER, values, entry(Status.RETRYING, message=reason),
                                         dispatch=dispatch, logs=logs)
        if task is not None:
            await self.changes.enqueue(task, defer=delay or None)
        return task

    async def requeue(self, task_id: str, dispatch: int, status: Status, reason: str) -> TaskDict | None:
        """A queued task whose arq job was lost: a new dispatch queued at once, its status kept (it has
        not run, so it is no retry)."""
        values = {"dispatch": dispatch + 1, "stage": reason[:200], "next_run_at": None}
        # `status` as read before: the guard lets this through only while the task is still queued,
        # and a queued task changes status only by leaving the queue
        task = await self.changes.update(task_id, REQUEUE, values, entry(status, message=reason), dispatch=dispatch)
        if task is not None:
            await self.changes.enqueue(task)
        return task

    async def recover(self, task: TaskDict, reason: str, policy: RetryPolicy) -> TaskDict | None:
        """An attempt whose worker is gone: cancelled if that was asked, else failed or run again."""
        if task["cancel_requested"]:
            return await self.finish(task["id"], task["dispatch"], STOP, progress=task["progress"],
                                     error=f"{reason}; it was being cancelled")
        return await self.fail(task, task["dispatch"], reason, retryable=True, policy=policy,
                               progress=task["progress"])
