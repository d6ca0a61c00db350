"""Every change to an existing task: a sequence number from Redis, the guarded write of its move, then
the publish.

Every move of a task goes through here (web: cancel, retry; workers: lifecycle/attempts.py), so each
change is persisted before it is published, carries a seq that only grows per task, and every seq
taken is published once (as the change or as a skip), which lets the web processes deliver events in
seq order without waiting on a gap. A change that ends a task writes its webhook deliveries in the
same transaction (webhooks/).
"""

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from arq.connections import ArqRedis

from app.core import keys
from app.core.clock import utcnow
from app.core.errors import OUTAGES
from app.core.status import FINAL, Move
from app.core.wire import TaskDict, TimelineEntry, encode_event, encode_skip, logs_frame
from app.lifecycle.groups import Change, GroupWriter, LogBatch, Written
from app.lifecycle.jobs import Jobs
from app.lifecycle.publish import publish_all
from app.metrics.tally import Tally
from app.store.stores import Stores
from app.webhooks.hooks import NUDGE, Hooks

log = logging.getLogger(__name__)

MAX_SEQ_RACES = 20  # a change that keeps losing to newer changes gives up after this many tries

# Raise the counter to at least ARGV[1]; returns the counter. A Redis that lost its data (no
# persistence, or restored from an old snapshot) must never hand out a seq the database already has.
RAISE_SEQ = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if current < floor then redis.call('SET', KEYS[1], floor) return floor end
return current
"""


class Changes:
    def __init__(self, stores: Stores, redis: ArqRedis, hooks: Hooks = Hooks()) -> None:
        self.stores = stores
        self.store = stores.tasks
        self.redis = redis
        self.hooks = hooks  # the global webhook; a task's own callback_url is on its row
        self.jobs = Jobs(redis)
        self._inflight: set[asyncio.Future[Any]] = set()
        self._groups = GroupWriter(redis, self._write, self._write_all)

    async def update(self, task_id: str, move: Move, values: Mapping[str, Any], timeline: TimelineEntry | None = None,
                     dispatch: int | None = None, logs: LogBatch | None = None) -> TaskDict | None:
        """Make `move` if the task is in one of its sources (and at `dispatch`); None if refused. `logs`,
        an attempt's last lines, are written (and published) with it in any case."""
        change = Change(task_id, move, values, timeline, dispatch, logs)
        task = await self._shielded(self._apply(change))
        if task is not None and change.ends_task and self.hooks.targets(task):
            await self._nudge()
        return task

    async def update_many(self, task_ids: list[str], move: Move, values: Mapping[str, Any],
                          timeline: TimelineEntry) -> list[TaskDict]:
        """`update` for many tasks at once (a bulk action): their seqs in one INCRBY, the writes in one
        transaction, the events (and skips, for tasks the move's guard refused) in one pipeline."""
        changed = await self._shielded(self._update_many(task_ids, move, values, timeline))
        if move.target in FINAL and any(self.hooks.targets(task) for task in changed):
            await self._nudge()
        return changed

    async def _shielded(self, work: Any) -> Any:
        """A cancelled caller must not leave a seq neither written nor published: the work goes on, and
        `drain` waits for it at shutdown."""
        applying = asyncio.ensure_future(work)
        self._inflight.add(applying)
        applying.add_done_callback(self._inflight.discard)
        return await asyncio.shield(applying)

    async def _apply(self, change: Change) -> TaskDict | None:
        for _ in range(MAX_SEQ_RACES):
            task, seq = await self._groups.apply(change)
            if task is not None:
                return task
            change = dataclasses.replace(change, logs=None)  # written with the first try
            current = await self.store.get(change.task_id)
            if current is None or current["status"] not in change.move.sources or current["seq"] < seq:
                return None  # refused by the status machine (or the dispatch guard)
            # A newer change was written between our INCR and our write (or the counter was
            # reset): make sure the counter is past it, and try again with a fresh seq.
            await self.raise_seq(current["seq"])
        log.warning("task %s: change %s lost %d seq races in a row", change.task_id, change.move.name, MAX_SEQ_RACES)
        return None

    async def _write(self, change: Change, seq: int) -> Written:
        """One change at `seq` (called by the group writer): the guarded move, and when it ends the task
        its webhook deliveries, which commit with it or not at all, as do its log lines."""
        if not change.writes_more:
            return Written(await self._move(change, seq))
        [written] = await self._write_all([(change, seq)])
        return written

    async def _write_all(self, group: list[tuple[Change, int]]) -> list[Written]:
        """A group's changes in one transaction, with the webhook deliveries of those that end their task
        and the log lines that come with them."""
        steps = [self.store.update_step(change.task_id, seq, change.move, change.values, entry=change.timeline,
                                        dispatch=change.dispatch) for change, seq in group]
        logged = [(change.task_id, *change.logs) for change, _ in group if change.logs is not None]
        frames: dict[str, str] = {}

        async def after(written: list[TaskDict | None], found: list[Sequence[Sequence[Any]]]) -> None:
            for (task_id, _, _), lines in zip(logged, self.stores.logs.stored(logged, found), strict=True):
                frames[task_id] = logs_frame(task_id, lines)
            await self._add_deliveries([task for (change, _), task in zip(group, written, strict=True)
                                        if task is not None and change.ends_task])

        written = await self.store.update_all(steps, [change.move for change, _ in group], after,
                                              self.stores.logs.steps(logged))
        return [Written(task, frames.get(change.task_id)) for (change, _), task in zip(group, written, strict=True)]

    async def _move(self, change: Change, seq: int) -> TaskDict | None:
        return await self.store.update(change.task_id, seq, change.move, change.values, entry=change.timeline,
                                       dispatch=change.dispatch)

    async def _update_many(self, task_ids: list[str], move: Move, values: Mapping[str, Any],
                           timeline: TimelineEntry) -> list[TaskDict]:
        last = await self.redis.incrby(keys.SEQ, len(task_ids))
        first = last - len(task_ids) + 1

        async def work() -> list[TaskDict]:
            changed = await self.store.update_many(task_ids, first, move, values, entry=timeline)
            if move.target in FINAL:  # with their webhook deliveries, in one transaction
                await self._add_deliveries(changed)
            return changed

        try:
            changed = await self.stores.db.atomically(work)
        except BaseException:
            await publish_all(self.redis, [encode_skip(seq) for seq in range(first, last + 1)])
            raise
        events = {task["seq"]: encode_event(task, move.change) for task in changed}
        tally = Tally()
        for task in changed:
            tally.observe(task, move)
        await publish_all(self.redis, [events.get(seq) or encode_skip(seq) for seq in range(first, last + 1)], tally)
        return changed

    async def _add_deliveries(self, tasks: list[TaskDict]) -> None:
        """The webhook deliveries these final states make (webhooks/hooks.py)."""
        await self.stores.webhooks.add([(task, targets) for task in tasks if (targets := self.hooks.targets(task))],
                                       utcnow())

    async def _nudge(self) -> None:
        """Tell the workers new deliveries are due; if Redis is away, their next look finds them."""
        try:
            await self.redis.publish(keys.CONTROL, NUDGE)
        except OUTAGES as exc:
            log.warning("webhook nudge not published (%s); the workers find the deliveries on their next look", exc)

    async def drain(self) -> None:
        """Let changes whose callers were cancelled finish, before Redis and the database close."""
        await asyncio.gather(*self._inflight, return_exceptions=True)

    async def publish_skip(self, seq: int) -> None:
        await publish_all(self.redis, [encode_skip(seq)])

    async def enqueue(self, task: TaskDict, defer: float | None = None) -> None:
        """Queue the task's current dispatch (a new job id each time: store/tables.py), by its
        priority, after `defer` seconds or at its `run_at`."""
        await self.jobs.write([task], defer_ms=round((defer or 0) * 1000))

    async def raise_seq(self, floor: int) -> int:
        return int(await self.redis.eval(RAISE_SEQ, 1, keys.SEQ, floor))  # type: ignore[misc]

    async def sync_seq(self) -> int:
        """Bring the Redis counter up to the newest change stored; returns the counter."""
        return await self.raise_seq(await self.store.max_seq())

