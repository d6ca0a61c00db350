"""What users do to tasks (web side): submit, get, cancel, retry."""

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from app import keys
from app.changes import Changes, entry
from app.errors import Conflict, InvalidParameters, NotFound, Unavailable
from app.intake import Intake
from app.logs import name_task
from app.newtask import OPTION_FIELDS, task_row
from app.params import validate_parameters
from app.status import CANCELLABLE, FINAL, RETRYABLE, WAITING, Status
from app.store import TaskStore, utcnow
from app.tasks import get_task_type
from app.uploads import UploadStore
from app.webhooks import Hooks
from app.wire import TaskDict, TimelineEntry

CANCEL_FLAG_TTL = 86_400  # seconds; the flag outlives any attempt that could still be running


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class TaskLifecycle:
    def __init__(self, store: TaskStore, redis: ArqRedis, uploads: UploadStore, max_queued: int,
                 hooks: Hooks = Hooks()) -> None:
        self.store = store
        self.redis = redis
        self.uploads = uploads
        self.max_queued = max_queued
        self.hooks = hooks
        self.changes = Changes(store, redis, hooks)
        self.intake = Intake(store, redis, max_queued)

    async def submit(
        self, task_type: object, parameters: object, options: Mapping[str, Any] | None = None, *,
        idempotency_key: str | None = None, source_task_id: str | None = None,
    ) -> tuple[TaskDict, bool]:
        """The new task and True; or, for an Idempotency-Key seen before, the first task and False.
        `options`: max_attempts, timeout, priority, run_at or delay, callback_url (app/newtask.py)."""
        values = self._new(task_type, parameters, options or {}, source_task_id=source_task_id)
        name_task(values["id"])  # the rest of the request is about the new task (a replayed key: see _replayed)
        if not idempotency_key:
            return await self.intake.one(values), True
        request_hash = _fingerprint(values["task_type"], values["parameters"], _options_fingerprinted(values, options))
        if earlier := await self._replayed(idempotency_key, request_hash):
            return earlier, False
        await self._check_room()
        values.update(idempotency_key=idempotency_key, request_hash=request_hash)
        try:
            return await self.changes.insert(values), True
        except RedisError as exc:
            raise Unavailable.redis_down(exc) from exc
        except Exception:
            # Two submits with one Idempotency-Key raced: the unique index let one through.
            if earlier := await self._replayed(idempotency_key, request_hash):
                return earlier, False
            raise

    async def submit_many(self, items: list[dict[str, Any]]) -> list[TaskDict]:
        """New tasks, all or none: every item is checked first (422 naming `tasks[i].<field>`), then
        they are stored in one transaction and queued in one Redis transaction (503 if they do not
        all fit under the queue cap, or Redis fails)."""
        rows = []
        for index, item in enumerate(items):
            try:
                rows.append(self._new(item.get("task_type"), item.get("parameters", {}), item, nested=True))
            except InvalidParameters as exc:
                raise InvalidParameters(f"tasks[{index}].{exc.field}", exc.message) from None
        return await self.intake.many(rows, whole=True)

    async def rerun(self, task_id: str, changes: Mapping[str, Any]) -> TaskDict:
        """A new task from an earlier one, linked to it: its parameters and options, with `changes`
        (any of parameters, priority, max_attempts, timeout, run_at, delay, callback_url) applied; the
        earlier task is left as it is. Only a `callback_url` in `changes` is checked (422): one inherited
        is kept while this server would still take it (WEBHOOK_SECRET set, the address allowed), and
        dropped otherwise, since the caller never sent it."""
        source = await self.get(task_id)
        options = {"priority": source["priority"], "max_attempts": source["max_attempts"],
                   "timeout": source["timeout"]}
        if source["callback_url"] and self.hooks.accepts(source["callback_url"]):
            options["callback_url"] = source["callback_url"]
        options.update({name: value for name, value in changes.items() if name != "parameters"})
        parameters = changes.get("parameters", source["parameters"])
        task, _ = await self.submit(source["task_type"], parameters, options, source_task_id=source["id"])
        return task

    def _new(self, task_type: object, parameters: object, options: Mapping[str, Any], *, nested: bool = False,
             source_task_id: str | None = None) -> dict[str, Any]:
        """A new task's row, checked; `nested` names parameters as `parameters.<name>` in a 422."""
        kind = get_task_type(task_type)
        try:
            params = validate_parameters(kind.params, parameters)
            self.uploads.check_references(kind.params, params)
        except InvalidParameters as exc:
            if not nested or exc.field == "parameters":
                raise
            raise InvalidParameters(f"parameters.{exc.field}", exc.message) from None
        return task_row(kind.name, params, {k: v for k, v in options.items() if k in OPTION_FIELDS},
                        source_task_id=source_task_id, signed=self.hooks.signed,
                        allow_private=self.hooks.allow_private)

    async def _check_room(self) -> None:
        """A flood must not fill memory or disk: past `max_queued` waiting jobs, submits wait."""
        try:
            queued = await self.changes.jobs.waiting()
        except RedisError as exc:
            raise Unavailable.redis_down(exc) from exc
        if queued >= self.max_queued:
            raise Unavailable.queue_full(queued)

    async def _replayed(self, key: str, request_hash: str | None) -> TaskDict | None:
        found = await self.store.by_idempotency_key(key)
        if found is None:
            return None
        if found[1] != request_hash:
            raise InvalidParameters("Idempotency-Key", "was already used for a different request")
        name_task(found[0]["id"])
        return found[0]

    async def get(self, task_id: str) -> TaskDict:
        # Every request about one task (its routes take `task_id`) looks it up here first.
        name_task(task_id)
        task = await self.store.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found")
        return task

    async def cancel(self, task_id: str) -> TaskDict:
        """Cancel a queued task at once, or ask its worker to stop a running one."""
        task = await self.get(task_id)
        if task["status"] in FINAL:
            raise Conflict(f"task is already {task['status']}; only {', '.join(sorted(CANCELLABLE))} can be cancelled")
        done = await self.changes.update(task_id, "status", WAITING, *_cancelled())
        if done is not None:
            await self._dequeue([done])
            return done
        return await self.request_stop(task_id)

    async def cancel_many(self, task_ids: list[str]) -> int:
        """Cancel these tasks (a bulk action): the queued ones in one go, the running ones asked to
        stop one by one; returns how many were cancelled or asked to stop."""
        done = await self.changes.update_many(task_ids, WAITING, *_cancelled())
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
        """Flag a running task and signal the workers; the one running it stops it.

        The flag is persisted first, so a worker that misses the signal (its subscription was
        down) still finds it: on resubscribing, and at its next progress report.
        """
        flagged = await self.changes.update(task_id, "status", {Status.RUNNING}, {"cancel_requested": True})
        if flagged is None:
            task = await self.get(task_id)
            if task["status"] in FINAL:
                return task
            raise Conflict(f"task is {task['status']} and cannot be cancelled now; try again")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(keys.cancel_key(task_id), "1", ex=CANCEL_FLAG_TTL)
            pipe.publish(keys.CONTROL, f"cancel|{task_id}")
            await pipe.execute()
        return flagged

    async def retry(self, task_id: str) -> TaskDict:
        task = await self.get(task_id)
        if task["status"] not in RETRYABLE:
            raise Conflict(f"task is {task['status']}; only FAILED or CANCELLED tasks can be retried")
        await self.redis.delete(keys.cancel_key(task_id))
        retried = await self.changes.update(task_id, "status", RETRYABLE, *self._retried())
        if retried is None:
            raise Conflict("task changed meanwhile; reload it and try again")
        await self.changes.enqueue(retried)
        return retried

    async def retry_many(self, task_ids: list[str]) -> int:
        """Retry these tasks (a bulk action) in one go; returns how many went back to PENDING."""
        await self.redis.delete(*(keys.cancel_key(task_id) for task_id in task_ids))
        retried = await self.changes.update_many(task_ids, RETRYABLE, *self._retried())
        if retried:
            await self.changes.jobs.write(retried)
        return len(retried)

    def _retried(self) -> tuple[dict[str, Any], TimelineEntry]:
        """A manual retry's change: a new dispatch, a fresh attempt budget, the last run's outcome cleared."""
        return {
            "status": Status.PENDING.value, "dispatch": self.store.incremented("dispatch"), "progress": 0.0,
            "stage": None, "result_data": None, "error_message": None, "started_at": None, "completed_at": None,
            "cancel_requested": False, "worker": None, "next_run_at": None,
            "attempts_base": self.store.current("attempts"),
        }, entry(Status.PENDING, message="manual retry")


def _options_fingerprinted(values: Mapping[str, Any], options: Mapping[str, Any] | None) -> dict[str, Any]:
    """What of a submit's options an Idempotency-Key's request must repeat: the limits as checked
    (an omitted limit and its default are different requests), a priority and start as given (a
    `delay` is not yet a time). Options left out keep the fingerprint of keys used before them."""
    shown: dict[str, Any] = {"max_attempts": values["max_attempts"], "timeout": values["timeout"]}
    for name in ("priority", "run_at", "delay", "callback_url"):
        if options and options.get(name) is not None:
            shown[name] = options[name]
    return shown


def _cancelled() -> tuple[dict[str, Any], TimelineEntry]:
    """A queued task's cancel."""
    return ({"status": Status.CANCELLED.value, "completed_at": utcnow(), "stage": "cancelled", "next_run_at": None},
            entry(Status.CANCELLED, message="cancelled before it started"))
