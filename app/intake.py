"""New tasks in bulk: room in the queue and their seqs from Redis in one script, the rows in one
transaction, their arq jobs and "created" events in one Redis script (atomic, one round trip).

A batch submit comes here whole. Single submits come here too, as groups: whatever submits arrive
while the previous group is being written form the next one (group commit), so under load a commit
(an fsync on SQLite) and each Redis round trip serve many submits, and an idle server writes a lone
submit at once. Every seq taken is published once, as the event or as a skip.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from arq.connections import ArqRedis

from app import keys
from app.changes import publish_all
from app.errors import OUTAGES, Unavailable
from app.jobs import Jobs, delayed_keys
from app.logs import detached
from app.metrics import submitted
from app.store import TaskStore
from app.wire import TaskDict, encode_event, encode_skip

MAX_GROUP = 1000  # single submits written together at most (and the batch endpoint's cap)

# Room for ARGV[2] more jobs below ARGV[1] waiting ones (all of them, or as many as fit when ARGV[3]
# is "0"), and that many seqs: returns {jobs waiting, admitted, last seq taken}. One round trip, and
# no seq is taken for a submit refused for room. KEYS: the seq counter, then the queue and the
# delayed sets (app/jobs.py).
ADMIT = """
local queued = 0
for i = 2, #KEYS do queued = queued + redis.call('ZCARD', KEYS[i]) end
local wanted = tonumber(ARGV[2])
local admitted = math.max(0, math.min(wanted, tonumber(ARGV[1]) - queued))
if ARGV[3] == '1' and admitted < wanted then admitted = 0 end
if admitted == 0 then return {queued, 0, 0} end
return {queued, admitted, redis.call('INCRBY', KEYS[1], admitted)}
"""

class Intake:
    def __init__(self, store: TaskStore, redis: ArqRedis, max_queued: int) -> None:
        self.store = store
        self.redis = redis
        self.max_queued = max_queued
        self.jobs = Jobs(redis)
        self._admit = redis.register_script(ADMIT)
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[TaskDict]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def one(self, values: dict[str, Any]) -> TaskDict:
        """Store and queue one task, written with whatever other submits are waiting."""
        done: asyncio.Future[TaskDict] = asyncio.get_running_loop().create_future()
        self._waiting.append((values, done))
        if self._writer is None or self._writer.done():
            self._writer = detached(self._write_groups(), name="submit-groups")  # a group is many submits
        return await done

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                created = await self.many([values for values, _ in group], whole=False)
            except BaseException as exc:
                for _, done in group:
                    if done.done():
                        continue
                    if isinstance(exc, Exception):
                        done.set_exception(exc)
                    else:  # the writer itself is being cancelled (shutdown): so are its waiters
                        done.cancel()
                if not isinstance(exc, Exception):
                    raise
                continue
            for index, (_, done) in enumerate(group):
                if done.done():  # its caller went away; the task stands, like any accepted submit
                    continue
                if index < len(created):
                    done.set_result(created[index])
                else:
                    done.set_exception(Unavailable.queue_full())

    async def many(self, rows: list[Mapping[str, Any]], *, whole: bool) -> list[TaskDict]:
        """Store and queue new tasks, in order. `whole`: all of them or none (503 if they do not all
        fit under the queue cap); else as many as fit, the first ones. Nothing is kept if Redis
        fails (503); a database failure raises as it is."""
        try:
            queued, admitted, last = await self._admit(
                keys=[keys.SEQ, self.jobs.queue, *delayed_keys(self.jobs.queue)], args=[self.max_queued, len(rows), int(whole)])
        except OUTAGES as exc:
            raise Unavailable.redis_down(exc) from exc
        if not admitted:
            raise Unavailable.queue_full(queued)
        first = last - admitted + 1
        try:
            created = await self.store.insert_many([{**row, "seq": first + i} for i, row in enumerate(rows[:admitted])])
        except BaseException:
            await self._skip(range(first, last + 1))
            raise
        try:
            await self._enqueue(created)
        except BaseException as exc:
            # Not accepted: leave nothing behind. Should the delete fail too, the rows stay PENDING
            # without jobs, and the workers' reconciler queues them (app/watchdog.py).
            await self.store.delete_many([task["id"] for task in created])
            await self._skip(range(first, last + 1))
            if isinstance(exc, OUTAGES):
                raise Unavailable.redis_down(exc) from exc
            raise
        return created

    async def _enqueue(self, created: list[TaskDict]) -> None:
        """The jobs, then the events, in one script. arq's WATCH/EXISTS guard against a job id
        already in use is left out: these ids are new (a fresh uuid4 task id, dispatch 1)."""
        await self.jobs.write(created, events=[encode_event(task, "created") for task in created],
                              tally=submitted(created))

    async def _skip(self, seqs: range) -> None:
        await publish_all(self.redis, [encode_skip(seq) for seq in seqs])
