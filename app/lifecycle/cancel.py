"""Cancelling tasks. A queued task ends CANCELLED at once and its job leaves the queue. A running one is
flagged (persisted, so a worker that misses the signal still finds it) and signalled on the workers'
control channel; the worker running it stops the attempt (worker/control.py hears the signal,
worker/runner.py interrupts the attempt and records STOP), and if that worker is gone its watchdog
recovery ends the task CANCELLED (worker/watchdog.py). `DELETE /api/tasks/{id}` answers once the web's
hub sees the final state (web/live/hub.py `watch_final`). In bulk: the queued ones in one statement,
the running ones flagged one by one.
"""

import asyncio
from typing import Any

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound
from app.core.status import CANCEL, CANCEL_REQUEST, CANCELLABLE, FINAL, Status
from app.core.wire import TaskDict, TimelineEntry, entry
from app.lifecycle.changes import Changes
from app.lifecycle.lookup import existing

CANCEL_FLAG_TTL = 86_400  # seconds; the flag outlives any attempt that could still be running
SIGNAL = "cancel|"  # + task id, on the control channel


def cancel_signal(task_id: str) -> str:
    return SIGNAL + task_id


def signalled_task(message: str) -> str | None:
    """The task a control message asks to cancel, if it is a cancel signal."""
    return message.removeprefix(SIGNAL) if message.startswith(SIGNAL) else None


def _cancelled() -> tuple[dict[str, Any], TimelineEntry]:
    return ({"completed_at": utcnow(), "stage": "cancelled", "next_run_at": None},
            entry(Status.CANCELLED, message="cancelled before it started"))


class Canceller:
    def __init__(self, changes: Changes) -> None:
        self.changes = changes
        self.store = changes.store
        self.redis = changes.redis

    async def cancel(self, task_id: str) -> TaskDict:
        """Cancel a queued task at once, or ask its worker to stop a running one."""
        task = await existing(self.store, task_id)
        if task["status"] in FINAL:
            raise Conflict(f"task is already {task['status']}; only {', '.join(sorted(CANCELLABLE))} can be cancelled")
        done = await self.changes.update(task_id, CANCEL, *_cancelled())
        if done is not None:
            await self._dequeue([done])
            return done
        return await self.request_stop(task_id)

    async def cancel_many(self, task_ids: list[str]) -> int:
        """Cancel these tasks (a bulk action): the queued ones in one go, the running ones asked to
        stop one by one; returns how many were cancelled or asked to stop."""
        done = await self.changes.update_many(task_ids, CANCEL, *_cancelled())
        if done:
            await self._dequeue(done)
        cancelled = {task["id"] for task in done}

        async def stop(task_id: str) -> bool:
            try:
                return (await self.request_stop(task_id))["status"] == Status.RUNNING
            except (Conflict, NotFound):
                return False

        stopped = await asyncio.gather(*(stop(task_id) for task_id in task_ids if task_id not in cancelled))
        return len(done) + sum(stopped)

    async def _dequeue(self, tasks: list[TaskDict]) -> None:
        """Drop cancelled tasks' jobs from arq's queue, so queue depth and positions stay honest.
        A worker that took one meanwhile finds the task CANCELLED and does nothing."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for task in tasks:
                self.changes.jobs.remove(pipe, keys.job_id(task["id"], task["dispatch"]))
            await pipe.execute()

    async def request_stop(self, task_id: str) -> TaskDict:
        """Flag a running task and signal the workers; the one running it stops it."""
        flagged = await self.changes.update(task_id, CANCEL_REQUEST, {"cancel_requested": True})
        if flagged is None:
            task = await existing(self.store, task_id)
            if task["status"] in FINAL:
                return task
            raise Conflict(f"task is {task['status']} and cannot be cancelled now; try again")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.cancel_key(task_id), "1", ex=CANCEL_FLAG_TTL)
            pipe.publish(keys.CONTROL, cancel_signal(task_id))
            await pipe.execute()
        return flagged
