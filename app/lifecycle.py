"""Every change to a task: sequence number from Redis, guarded write to the store, then publish.

Both the web (submit, cancel, retry) and the workers (start, progress, finish, hand back) change
tasks only through here, so each change is persisted before it is published, carries a seq that
only grows per task, and every seq taken is published once (as the change or as a skip), which
lets the web processes deliver events in seq order without waiting on a gap.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from app import keys
from app.errors import Conflict, NotFound, Unavailable
from app.status import CANCELLABLE, FINAL, RETRYABLE, WAITING, Status
from app.store import TaskStore, utcnow
from app.params import validate_parameters
from app.tasks import get_task_type
from app.wire import Change, TaskDict, TimelineEntry, encode_event, encode_skip

log = logging.getLogger(__name__)

CANCEL_FLAG_TTL = 86_400  # seconds; the flag outlives any attempt that could still be running
MAX_SEQ_RACES = 20  # a change that keeps losing to newer changes gives up after this many tries

# Raise the counter to at least ARGV[1]; returns the counter. A Redis that lost its data (no
# persistence, or restored from an old snapshot) must never hand out a seq the database already has.
RAISE_SEQ = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if current < floor then redis.call('SET', KEYS[1], floor) return floor end
return current
"""


def _entry(status: Status, **extra: Any) -> TimelineEntry:
    return {"status": status.value, "at": utcnow().isoformat(), **extra}  # type: ignore[typeddict-item]


class TaskLifecycle:
    def __init__(self, store: TaskStore, redis: ArqRedis) -> None:
        self.store = store
        self.redis = redis

    async def _change(
        self, task_id: str, change: Change, write: Callable[[int], Awaitable[TaskDict | None]],
        statuses: Iterable[Status],
    ) -> TaskDict | None:
        # Shielded: a cancelled caller must not leave a seq neither written nor published.
        return await asyncio.shield(self._apply(task_id, change, write, frozenset(statuses)))

    async def _apply(
        self, task_id: str, change: Change, write: Callable[[int], Awaitable[TaskDict | None]],
        statuses: frozenset[Status],
    ) -> TaskDict | None:
        for _ in range(MAX_SEQ_RACES):
            seq = await self.redis.incr(keys.SEQ)
            try:
                task = await write(seq)
            except BaseException:
                await self.redis.publish(keys.EVENTS, encode_skip(seq))
                raise
            if task is not None:
                await self.redis.publish(keys.EVENTS, encode_event(task, change))
                return task
            await self.redis.publish(keys.EVENTS, encode_skip(seq))
            current = await self.store.get(task_id)
            if current is None or current["status"] not in statuses or current["seq"] < seq:
                return None  # refused by the status machine (or the dispatch guard)
            # A newer change was written between our INCR and our write (or the counter was
            # reset): make sure the counter is past it, and try again with a fresh seq.
            await self.raise_seq(current["seq"])
        log.warning("task %s: change %s lost %d seq races in a row", task_id, change, MAX_SEQ_RACES)
        return None

    async def raise_seq(self, floor: int) -> int:
        return int(await self.redis.eval(RAISE_SEQ, 1, keys.SEQ, floor))

    async def sync_seq(self) -> int:
        """Bring the Redis counter up to the newest change stored; returns the counter."""
        return await self.raise_seq(await self.store.max_seq())

    async def _update(
        self, task_id: str, change: Change, statuses: Iterable[Status], values: Mapping[str, Any],
        entry: TimelineEntry | None = None, dispatch: int | None = None,
    ) -> TaskDict | None:
        statuses = frozenset(statuses)

        async def write(seq: int) -> TaskDict | None:
            return await self.store.update(
                task_id, seq, statuses=statuses, values=values, entry=entry, dispatch=dispatch
            )

        return await self._change(task_id, change, write, statuses)

    async def _enqueue(self, task: TaskDict) -> None:
        await self.redis.enqueue_job(
            "run_task", task["id"], task["dispatch"], _job_id=keys.job_id(task["id"], task["dispatch"])
        )

    # --- web side -------------------------------------------------------------------------

    async def submit(self, task_type: object, parameters: object) -> TaskDict:
        kind = get_task_type(task_type)
        params = validate_parameters(kind.params, parameters)
        now = utcnow()
        values = {
            "id": uuid.uuid4().hex, "task_type": kind.name, "status": Status.PENDING.value,
            "parameters": params, "progress": 0.0, "created_at": now, "updated_at": now,
            "attempts": 0, "dispatch": 1, "cancel_requested": False,
            "timeline": [_entry(Status.PENDING)],
        }
        try:
            values["seq"] = await self.redis.incr(keys.SEQ)
            task = await self.store.insert(values)
            try:
                await self._enqueue(task)
            except BaseException:
                await self.store.delete(task["id"])  # not accepted: leave nothing behind
                raise
        except RedisError as exc:
            await self._publish_skip(values.get("seq"))
            raise Unavailable(f"queue unavailable (Redis: {exc.__class__.__name__}); retry later") from exc
        await self.redis.publish(keys.EVENTS, encode_event(task, "created"))
        return task

    async def _publish_skip(self, seq: int | None) -> None:
        if seq is not None:
            try:
                await self.redis.publish(keys.EVENTS, encode_skip(seq))
            except RedisError:
                pass  # the web processes' gap timeout covers a skip that cannot be sent

    async def get(self, task_id: str) -> TaskDict:
        task = await self.store.get(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found")
        return task

    async def cancel(self, task_id: str) -> TaskDict:
        """Cancel a queued task at once, or ask its worker to stop a running one."""
        task = await self.get(task_id)
        if task["status"] in FINAL:
            raise Conflict(f"task is already {task['status']}; only {', '.join(sorted(CANCELLABLE))} can be cancelled")
        done = await self._update(
            task_id, "status", WAITING,
            {"status": Status.CANCELLED.value, "completed_at": utcnow(), "stage": "cancelled"},
            _entry(Status.CANCELLED, message="cancelled before it started"),
        )
        if done is not None:
            return done
        return await self.request_stop(task_id)

    async def request_stop(self, task_id: str) -> TaskDict:
        """Flag a running task and signal the workers; the one running it stops it.

        The flag is persisted first, so a worker that misses the signal (its subscription was
        down) still finds it: on resubscribing, and at its next progress report.
        """
        flagged = await self._update(task_id, "status", {Status.RUNNING}, {"cancel_requested": True})
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
        retried = await self._update(
            task_id, "status", RETRYABLE,
            {
                "status": Status.PENDING.value, "dispatch": task["dispatch"] + 1, "progress": 0.0,
                "stage": None, "result_data": None, "error_message": None, "started_at": None,
                "completed_at": None, "cancel_requested": False, "worker": None,
            },
            _entry(Status.PENDING, message="manual retry"),
        )
        if retried is None:
            raise Conflict("task changed meanwhile; reload it and try again")
        await self._enqueue(retried)
        return retried

    # --- worker side ----------------------------------------------------------------------

    async def start(self, task_id: str, dispatch: int, worker: str) -> TaskDict | None:
        """Claim a queued task for this dispatch; None when the job is stale or the task gone."""
        return await self._update(
            task_id, "status", WAITING,
            {
                "status": Status.RUNNING.value, "started_at": utcnow(), "worker": worker,
                "attempts": self.store.incremented("attempts"),
                "stage": "started",
            },
            _entry(Status.RUNNING, worker=worker),
            dispatch=dispatch,
        )

    async def progress(self, task_id: str, progress: float, stage: str) -> TaskDict | None:
        return await self._update(
            task_id, "progress", {Status.RUNNING}, {"progress": progress, "stage": stage[:200]}
        )

    async def finish(
        self, task_id: str, status: Status, *, progress: float, result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> TaskDict | None:
        """End a running attempt: SUCCESS, FAILED or CANCELLED; None if it was not RUNNING."""
        values: dict[str, Any] = {
            "status": status.value, "completed_at": utcnow(), "stage": status.value.lower(),
            "progress": 100.0 if status == Status.SUCCESS else progress,
        }
        if status == Status.SUCCESS:
            values["result_data"] = result
        if error is not None:
            values["error_message"] = error
        entry = _entry(status, message=error) if error else _entry(status)
        return await self._update(task_id, "status", {Status.RUNNING}, values, entry)

    async def hand_back(self, task_id: str, dispatch: int, reason: str) -> TaskDict | None:
        """Give a running attempt back to the queue as a new dispatch (worker shutting down)."""
        task = await self._update(
            task_id, "status", {Status.RUNNING},
            {"status": Status.RETRYING.value, "dispatch": dispatch + 1, "stage": reason, "worker": None},
            _entry(Status.RETRYING, message=reason),
            dispatch=dispatch,
        )
        if task is not None:
            await self._enqueue(task)
        return task
