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
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from app import keys
from app.changes import publish_all
from app.errors import OUTAGES, Unavailable
from app.store import TaskStore
from app.wire import TaskDict, encode_event, encode_skip

MAX_GROUP = 1000  # single submits written together at most (and the batch endpoint's cap)

# Room for ARGV[2] more jobs below ARGV[1] waiting ones (all of them, or as many as fit when ARGV[3]
# is "0"), and that many seqs: returns {jobs waiting, admitted, last seq taken}. One round trip, and
# no seq is taken for a submit refused for room.
ADMIT = """
local queued = redis.call('ZCARD', KEYS[1])
local wanted = tonumber(ARGV[2])
local admitted = math.max(0, math.min(wanted, tonumber(ARGV[1]) - queued))
if ARGV[3] == '1' and admitted < wanted then admitted = 0 end
if admitted == 0 then return {queued, 0, 0} end
return {queued, admitted, redis.call('INCRBY', KEYS[2], admitted)}
"""

# KEYS: arq's queue, then the N job keys; ARGV: expiry (ms), score, events channel, then the N job
# ids, the N serialised jobs and the N events.
WRITE_JOBS = """
local n = #KEYS - 1
for i = 1, n do
  redis.call('PSETEX', KEYS[i + 1], ARGV[1], ARGV[3 + n + i])
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3 + i])
end
for i = 1, n do redis.call('PUBLISH', ARGV[3], ARGV[3 + 2 * n + i]) end
return n
"""


class Intake:
    def __init__(self, store: TaskStore, redis: ArqRedis, max_queued: int) -> None:
        self.store = store
        self.redis = redis
        self.max_queued = max_queued
        self._admit = redis.register_script(ADMIT)
        self._write_jobs = redis.register_script(WRITE_JOBS)
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[TaskDict]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def one(self, values: dict[str, Any]) -> TaskDict:
        """Store and queue one task, written with whatever other submits are waiting."""
        done: asyncio.Future[TaskDict] = asyncio.get_running_loop().create_future()
        self._waiting.append((values, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="submit-groups")
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
                keys=[self.redis.default_queue_name, keys.SEQ], args=[self.max_queued, len(rows), int(whole)])
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
        """The jobs exactly as arq's `enqueue_job` writes them (its serializer, key, expiry and
        score), then the events, in one script: atomic like arq's MULTI, and one command and one
        reply however many tasks. arq's WATCH/EXISTS guard against a job id already in use is left
        out: these ids are new (a fresh uuid4 task id, dispatch 1)."""
        now = timestamp_ms()
        job_ids = [keys.job_id(task["id"], task["dispatch"]) for task in created]
        jobs = [serialize_job("run_task", (task["id"], task["dispatch"]), {}, None, now,
                              serializer=self.redis.job_serializer) for task in created]
        events = [encode_event(task, "created") for task in created]
        await self._write_jobs(keys=[self.redis.default_queue_name, *(keys.ARQ_JOB_PREFIX + j for j in job_ids)],
                               args=[self.redis.expires_extra_ms, now, keys.EVENTS, *job_ids, *jobs, *events])

    async def _skip(self, seqs: range) -> None:
        await publish_all(self.redis, [encode_skip(seq) for seq in seqs])
