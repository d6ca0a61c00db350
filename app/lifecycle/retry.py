"""Manual retry: a FAILED or CANCELLED task goes back to PENDING as a new dispatch, with a fresh
attempt budget and the last run's outcome cleared; one task, or many in one go (a bulk action).
(Automatic retries after a failed attempt are the worker's: lifecycle/attempts.py `retry_later`.)"""

from typing import Any

from app.core import keys
from app.core.errors import Conflict
from app.core.status import MANUAL_RETRY, RETRYABLE, Status
from app.core.wire import TaskDict, TimelineEntry, entry
from app.lifecycle.changes import Changes
from app.lifecycle.lookup import existing
from app.tasks import TaskTypes


class Retrier:
    def __init__(self, changes: Changes, types: TaskTypes) -> None:
        self.changes = changes
        self.store = changes.store
        self.redis = changes.redis
        self.types = types

    async def retry(self, task_id: str) -> TaskDict:
        task = await existing(self.store, task_id)
        if task["status"] not in RETRYABLE:
            raise Conflict(f"task is {task['status']}; only FAILED or CANCELLED tasks can be retried")
        self.types.named(task["task_type"])  # a type no longer loaded here: a 422 naming it, as a submit gets
        await self.redis.delete(keys.cancel_key(task_id))
        retried = await self.changes.update(task_id, MANUAL_RETRY, *self._retried())
        if retried is None:
            raise Conflict("task changed meanwhile; reload it and try again")
        await self.changes.enqueue(retried)
        return retried

    async def retry_many(self, task_ids: list[str]) -> int:
        """Retry these tasks in one go; returns how many went back to PENDING."""
        await self.redis.delete(*(keys.cancel_key(task_id) for task_id in task_ids))
        retried = await self.changes.update_many(task_ids, MANUAL_RETRY, *self._retried())
        if retried:
            await self.changes.jobs.write(retried)
        return len(retried)

    def _retried(self) -> tuple[dict[str, Any], TimelineEntry]:
        return {
            "dispatch": self.store.incremented("dispatch"), "progress": 0.0, "stage": None, "result_data": None,
            "error_message": None, "error_traceback": None, "started_at": None, "completed_at": None,
            "cancel_requested": False, "worker": None, "next_run_at": None,
            "attempts_base": self.store.current("attempts"),
        }, entry(Status.PENDING, message="manual retry")
