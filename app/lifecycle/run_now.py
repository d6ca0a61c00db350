"""Run now: a task waiting for a later start (a scheduled one, or one backing off before its next
attempt) is queued at once, as a new dispatch with its priority; its delayed job is dropped (and would
find the task moved on if a worker had taken it meanwhile)."""

from datetime import datetime

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import Conflict
from app.core.status import RUN_NOW, WAITING, Status
from app.core.wire import TaskDict, entry
from app.lifecycle.changes import Changes
from app.lifecycle.lookup import existing


class RunNow:
    def __init__(self, changes: Changes) -> None:
        self.changes = changes
        self.store = changes.store

    async def run_now(self, task_id: str) -> TaskDict:
        task = await existing(self.store, task_id)
        due = task["next_run_at"]
        if task["status"] not in WAITING or due is None or datetime.fromisoformat(due) <= utcnow():
            raise Conflict(f"task is {task['status']} and not waiting for a later start; only a scheduled task or "
                           "one waiting for its next attempt can run now")
        values = {"dispatch": task["dispatch"] + 1, "next_run_at": None, "stage": "queued now, ahead of its time"}
        moved = await self.changes.update(task_id, RUN_NOW, values, entry(Status(task["status"]), message="run now"),
                                          dispatch=task["dispatch"])
        if moved is None:
            raise Conflict("task changed meanwhile; reload it and try again")
        async with self.changes.redis.pipeline(transaction=True) as pipe:
            self.changes.jobs.remove(pipe, keys.job_id(task_id, task["dispatch"]))
            await pipe.execute()
        await self.changes.enqueue(moved)
        return moved
