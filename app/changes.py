"""Every change to a task: sequence number from Redis, guarded write to the store, then publish.

The web (app/lifecycle.py) and the workers (app/attempts.py) change tasks only through here, so
each change is persisted before it is published, carries a seq that only grows per task, and
every seq taken is published once (as the change or as a skip), which lets the web processes
deliver events in seq order without waiting on a gap.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple

from arq.connections import ArqRedis

from app import keys
from app.errors import OUTAGES
from app.jobs import Jobs
from app.logs import detached
from app.metrics import Tally, submitted
from app.status import FINAL, Status
from app.store import TaskStore, utcnow
from app.webhook_store import WebhookStore
from app.webhooks import NUDGE, Hooks
from app.wire import Change, TaskDict, TimelineEntry, encode_event, encode_skip

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


def entry(status: Status, **extra: Any) -> TimelineEntry:
    return {"status": status.value, "at": utcnow().isoformat(), **extra}  # type: ignore[typeddict-item]


class Changes:
    def __init__(self, store: TaskStore, redis: ArqRedis, hooks: Hooks = Hooks()) -> None:
        self.store = store
        self.redis = redis
        self.hooks = hooks  # the global webhook; a task's own callback_url is on its row
        self.webhooks = WebhookStore(store)
        self._inflight: set[asyncio.Future[Any]] = set()
        self._writes = GroupWriter(self)
        self.jobs = Jobs(redis)

    async def update(
        self, task_id: str, change: Change, statuses: Iterable[Status], values: Mapping[str, Any],
        timeline: TimelineEntry | None = None, dispatch: int | None = None,
    ) -> TaskDict | None:
        """Apply `values` if the task is in one of `statuses` (and at `dispatch`); None if refused."""
        allowed = frozenset(statuses)
        notified: list[int] = []

        async def update(seq: int) -> TaskDict | None:
            return await self.store.update(
                task_id, seq, statuses=allowed, values=values, entry=timeline, dispatch=dispatch
            )

        async def end(seq: int) -> TaskDict | None:
            # The webhooks' outbox rows commit with the final state, or neither does.
            async def both() -> TaskDict | None:
                task = await update(seq)
                if task is not None:
                    notified.append(await self._add_deliveries([task]))
                return task

            return await self.store.atomically(both)

        write = end if values.get("status") in FINAL else update

        # Shielded: a cancelled caller must not leave a seq neither written nor published.
        applying = asyncio.ensure_future(self._apply(task_id, change, write, allowed))
        self._inflight.add(applying)
        applying.add_done_callback(self._inflight.discard)
        task = await asyncio.shield(applying)
        if task is not None and any(notified):
            await self._nudge()
        return task

    async def _add_deliveries(self, tasks: list[TaskDict]) -> int:
        """The webhook deliveries these final states make (app/webhooks.py); how many."""
        return await self.webhooks.add([(task, targets) for task in tasks if (targets := self.hooks.targets(task))],
                                       utcnow())

    async def _nudge(self) -> None:
        """Tell the workers new deliveries are due; if Redis is away, their next look finds them."""
        try:
            await self.redis.publish(keys.CONTROL, NUDGE)
        except OUTAGES as exc:
            log.warning("webhook nudge not published (%s); the workers find the deliveries on their next look", exc)

    async def update_many(self, task_ids: list[str], statuses: Iterable[Status], values: Mapping[str, Any],
                          timeline: TimelineEntry) -> list[TaskDict]:
        """`update` for many tasks at once (a bulk action): their seqs in one INCRBY, the writes in one
        transaction, the events (and skips, for tasks no longer in `statuses`) in one pipeline. Shielded
        like `update`: a cancelled caller leaves no seq unpublished."""
        applying = asyncio.ensure_future(self._update_many(task_ids, frozenset(statuses), values, timeline))
        self._inflight.add(applying)
        applying.add_done_callback(self._inflight.discard)
        return await asyncio.shield(applying)

    async def _update_many(self, task_ids: list[str], statuses: frozenset[Status], values: Mapping[str, Any],
                           timeline: TimelineEntry) -> list[TaskDict]:
        last = await self.redis.incrby(keys.SEQ, len(task_ids))
        first = last - len(task_ids) + 1
        notified = 0

        async def work() -> list[TaskDict]:
            nonlocal notified
            changed = await self.store.update_many(task_ids, first, statuses=statuses, values=values, entry=timeline)
            if values.get("status") in FINAL:  # with their webhook deliveries, in one transaction
                notified = await self._add_deliveries(changed)
            return changed

        try:
            changed = await self.store.atomically(work)
        except BaseException:
            await publish_all(self.redis, [encode_skip(seq) for seq in range(first, last + 1)])
            raise
        events = {task["seq"]: encode_event(task, "status") for task in changed}
        tally = Tally()
        for task in changed:
            tally.observe(task, "status", statuses)
        await publish_all(self.redis, [events.get(seq) or encode_skip(seq) for seq in range(first, last + 1)], tally)
        if notified:
            await self._nudge()
        return changed

    async def drain(self) -> None:
        """Let changes whose callers were cancelled finish, before Redis and the database close."""
        await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _apply(
        self, task_id: str, change: Change, write: Callable[[int], Awaitable[TaskDict | None]],
        statuses: frozenset[Status],
    ) -> TaskDict | None:
        for _ in range(MAX_SEQ_RACES):
            task, seq = await self._writes.apply(write, change, statuses)
            if task is not None:
                return task
            current = await self.store.get(task_id)
            if current is None or current["status"] not in statuses or current["seq"] < seq:
                return None  # refused by the status machine (or the dispatch guard)
            # A newer change was written between our INCR and our write (or the counter was
            # reset): make sure the counter is past it, and try again with a fresh seq.
            await self.raise_seq(current["seq"])
        log.warning("task %s: change %s lost %d seq races in a row", task_id, change, MAX_SEQ_RACES)
        return None

    async def insert(self, values: Mapping[str, Any]) -> TaskDict:
        """Store a new task (PENDING) and queue its first job; published once both are done."""
        seq = await self.redis.incr(keys.SEQ)
        try:
            task = await self.store.insert({**values, "seq": seq})
            try:
                await self.enqueue(task)
            except BaseException:
                await self.store.delete(task["id"])  # not accepted: leave nothing behind
                raise
        except BaseException:
            await self.publish_skip(seq)
            raise
        await publish_all(self.redis, [encode_event(task, "created")], submitted([task]))
        return task

    async def publish_skip(self, seq: int) -> None:
        await self._publish(encode_skip(seq))

    async def _publish(self, payload: str) -> None:
        """Publish a change already stored. If Redis went away in between, the change stands: the
        web processes fill the gap from the database once it has waited too long."""
        try:
            await self.redis.publish(keys.EVENTS, payload)
        except OUTAGES as exc:
            log.warning("event %s not published (%s); the web will read it from the database",
                        payload.split("|", 1)[0], exc)

    async def enqueue(self, task: TaskDict, defer: float | None = None) -> None:
        """Queue the task's current dispatch (a new job id each time: app/tables.py), by its
        priority, after `defer` seconds or at its `run_at`."""
        await self.jobs.write([task], defer_ms=round((defer or 0) * 1000))

    async def raise_seq(self, floor: int) -> int:
        return int(await self.redis.eval(RAISE_SEQ, 1, keys.SEQ, floor))  # type: ignore[misc]

    async def sync_seq(self) -> int:
        """Bring the Redis counter up to the newest change stored; returns the counter."""
        return await self.raise_seq(await self.store.max_seq())


async def publish_all(redis: ArqRedis, payloads: list[str], tally: Tally | None = None) -> None:
    """Publish changes (or skips) already settled, in this order, in one round trip, with the
    figures they add (app/metrics.py). If Redis went away in between, they stand: the web processes
    fill the gap from the database (the figures of those changes are lost)."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(keys.EVENTS, payload)
            if tally:
                tally.write(pipe)
            await pipe.execute()
    except OUTAGES as exc:
        log.warning("%d events not published (%s); the web will read them from the database", len(payloads), exc)


Write = Callable[[int], Awaitable[TaskDict | None]]


class Waiting(NamedTuple):
    """A change waiting for its group: how to write it, what it is, the statuses its guard allows
    (they tell the figures what kind of move it was: app/metrics.py), and where its outcome goes."""

    write: Write
    change: Change
    guard: frozenset[Status]
    done: "asyncio.Future[tuple[TaskDict | None, int]]"


class GroupWriter:
    """Group commit: the changes that arrive while one group is being written form the next group,
    which takes its seqs with one INCRBY, is written in one transaction and published in one
    pipeline. A lone change goes at once; under load (a worker running ten jobs, a burst of
    cancels) a group costs three round trips and one commit instead of three and one per change.
    Each change keeps its own outcome: a group whose transaction fails is written change by change.
    """

    def __init__(self, changes: Changes) -> None:
        self._changes = changes
        self._waiting: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def apply(self, write: Write, change: Change, statuses: frozenset[Status]) -> tuple[TaskDict | None, int]:
        """The task as written (None if the guard refused it) and the seq it was written with.
        `statuses`: the guard's."""
        done: asyncio.Future[tuple[TaskDict | None, int]] = asyncio.get_running_loop().create_future()
        self._waiting.append(Waiting(write, change, statuses, done))
        if self._writer is None or self._writer.done():
            self._writer = detached(self._write_groups(), name="group-writer")  # a group is many tasks' changes
        return await done

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await self._write(group)
            except BaseException as exc:
                for waiting in group:
                    if not waiting.done.done():
                        waiting.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _write(self, group: list[Waiting]) -> None:
        changes = self._changes
        last = int(await changes.redis.incrby(keys.SEQ, len(group)))
        seqs = range(last - len(group) + 1, last + 1)

        async def write_each() -> list[TaskDict | None | Exception]:
            return [await _outcome(waiting.write, seq) for waiting, seq in zip(group, seqs, strict=True)]

        async def write_all() -> list[TaskDict | None | Exception]:
            return [await waiting.write(seq) for waiting, seq in zip(group, seqs, strict=True)]

        if not changes.store.one_writer_at_a_time:
            # PostgreSQL: each change commits alone. A status move locks two rows of task_counts
            # (app/tables.py); a transaction of several moves would take them out of order, and two
            # workers' groups would deadlock.
            outcomes = await write_each()
        else:
            try:
                outcomes = await changes.store.atomically(write_all)
            except Exception as exc:
                # one change's error must not become the others': then each is written on its own
                outcomes = [exc] if len(group) == 1 else await write_each()
        payloads = [encode_skip(seq) if outcome is None or isinstance(outcome, Exception)
                    else encode_event(outcome, waiting.change)
                    for waiting, seq, outcome in zip(group, seqs, outcomes, strict=True)]
        tally = Tally()
        for waiting, outcome in zip(group, outcomes, strict=True):
            if outcome is not None and not isinstance(outcome, Exception):
                tally.observe(outcome, waiting.change, waiting.guard)
        await publish_all(changes.redis, payloads, tally)
        for waiting, seq, outcome in zip(group, seqs, outcomes, strict=True):
            if waiting.done.done():
                continue
            if isinstance(outcome, Exception):
                waiting.done.set_exception(outcome)
            else:
                waiting.done.set_result((outcome, seq))


async def _outcome(write: Write, seq: int) -> TaskDict | None | Exception:
    try:
        return await write(seq)
    except Exception as exc:
        return exc
