"""Where tasks' arq jobs go: priorities as score bands in arq's one queue, and delayed jobs held
aside until they are due.

arq has one queue per worker, a sorted set it reads in score order up to "now" (the score is the
time a job may start). Scores here are the time minus a band per priority, so every due job of a
higher priority sorts before any of a lower one and, within a priority, the older first; arq then
takes them in that order, and `ZRANK` is a job's true place in line. A job that must wait (a
scheduled task, a retry's backoff) cannot sit in that queue with a banded score (it would start
early), so it waits in a delayed set of its priority and the workers move it into the queue when
it is due, by Redis' clock (`PROMOTE`).
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from arq.jobs import serialize_job
from redis.asyncio.client import Pipeline

from app.core import keys
from app.core.errors import OUTAGES, stop_if_cancelled
from app.core.keys import delayed_key, delayed_keys
from app.core.priority import BAND_MS, queue_score
from app.core.wakeup import woken
from app.core.wire import TaskDict
from app.metrics.depth import NOTE, NOTE_ARGS
from app.metrics.tally import Tally

log = logging.getLogger(__name__)

# What the scripts tell the waiting workers on the control channel (worker/control.py): jobs are due
# in the queue (take them), or a job went into a delayed set (it may be due before the next look).
# Workers block on these instead of polling Redis; their slow poll is only the safety net.
DUE, DELAYED = "due", "delayed"

# KEYS: the queue, then the N job keys; ARGV: expiry beyond the due time (ms), now (ms), the events
# channel, the number of events E, the 3 arguments of note_depth (metrics/depth.py), the control
# channel, then for each job: id, serialised job, due time (ms), target (queue or delayed set), score,
# then the E events to publish, then the figures to add (hash, field, amount: metrics/tally.py). One
# round trip, atomic like arq's MULTI: the figures count only what was queued, a burst's depth is
# noted at its height, and the workers are woken once per call, not per job.
WRITE = NOTE + """
local now = tonumber(ARGV[2])
local n = #KEYS - 1
local due_now = 0
for i = 1, n do
  local at = 8 + (i - 1) * 5
  local due = tonumber(ARGV[at + 3])
  redis.call('PSETEX', KEYS[i + 1], math.max(due - now, 0) + tonumber(ARGV[1]), ARGV[at + 2])
  redis.call('ZADD', ARGV[at + 4], ARGV[at + 5], ARGV[at + 1])
  if ARGV[at + 4] == KEYS[1] then due_now = due_now + 1 end
end
local events = 9 + n * 5
local figures = events + tonumber(ARGV[4])
for i = events, figures - 1 do redis.call('PUBLISH', ARGV[3], ARGV[i]) end
for i = figures, #ARGV, 3 do redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
if due_now > 0 then
  note_depth(KEYS[1], now, ARGV[5], ARGV[6], ARGV[7])
  redis.call('PUBLISH', ARGV[8], '""" + DUE + """')
end
if due_now < n then redis.call('PUBLISH', ARGV[8], '""" + DELAYED + """') end
return n
"""

# KEYS: the queue, then the delayed sets from the highest priority down; ARGV: the band (ms), the
# most jobs to move per set, the 3 arguments of note_depth, the control channel. Moves the jobs due by
# Redis' clock into the queue with their banded score; returns {jobs moved, ms until the next one is
# due (-1: none waiting)}.
PROMOTE = NOTE + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved, wait = 0, -1
for i = 2, #KEYS do
  local band = (#KEYS - i) * tonumber(ARGV[1])
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
  for j = 1, #due, 2 do
    redis.call('ZADD', KEYS[1], tonumber(due[j + 1]) - band, due[j])
    redis.call('ZREM', KEYS[i], due[j])
    moved = moved + 1
  end
  local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if #first > 0 then
    local left = math.max(tonumber(first[2]) - now, 0)
    if wait < 0 or left < wait then wait = left end
  end
end
if moved > 0 then
  note_depth(KEYS[1], now, ARGV[3], ARGV[4], ARGV[5])
  redis.call('PUBLISH', ARGV[6], '""" + DUE + """')
end
return {moved, wait}
"""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
PROMOTE_BATCH = 500
# Seconds between looks at the delayed sets at most, when no message says a new one may be due sooner
# (the next due time is known, and each new delayed job is announced: this is the safety net only).
PROMOTE_EVERY = 1.0


class Jobs:
    """Writes tasks' jobs exactly as arq's `enqueue_job` would (its serializer, key and expiry),
    except for the score and the delayed sets."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis
        self.queue = redis.default_queue_name
        self._write = redis.register_script(WRITE)
        self._promote = redis.register_script(PROMOTE)

    async def write(self, tasks: Sequence[TaskDict], *, defer_ms: int = 0, events: Sequence[str] = (),
                    tally: Tally | None = None) -> None:
        """Queue a job for each task's current dispatch (after `defer_ms`, or at its `next_run_at`
        if later: a scheduled task's start), then publish `events`; all in one script, with the
        figures of `tally` (metrics/tally.py: counts only)."""
        now = time.time_ns() // 1_000_000  # down: a job is never taken as due before its time (`due_ms`)
        args: list[str | int | bytes] = [self.redis.expires_extra_ms, now, keys.EVENTS, len(events), *NOTE_ARGS,
                                         keys.CONTROL]
        job_keys = []
        for task in tasks:
            job = keys.job_id(task["id"], task["dispatch"])
            due = max(now + defer_ms, due_ms(task["next_run_at"]) if task["next_run_at"] else 0)
            if due > now:
                target, score = delayed_key(self.queue, task["priority"]), due
            else:
                target, score = self.queue, queue_score(task["priority"], now)
            serialized = serialize_job("run_task", (task["id"], task["dispatch"], task["task_type"]), {}, None, now,
                                       serializer=self.redis.job_serializer)
            args += [job, serialized, due, target, score]
            job_keys.append(keys.ARQ_JOB_PREFIX + job)
        figures = [value for increment in (tally.increments() if tally else []) for value in increment]
        await self._write(keys=[self.queue, *job_keys], args=[*args, *events, *figures])

    async def promote(self) -> tuple[int, float | None]:
        """Move due delayed jobs into the queue: (jobs moved, seconds until the next is due)."""
        moved, wait = await self._promote(keys=[self.queue, *delayed_keys(self.queue)],
                                          args=[BAND_MS, PROMOTE_BATCH, *NOTE_ARGS, keys.CONTROL])
        return int(moved), None if int(wait) < 0 else int(wait) / 1000

    def remove(self, pipe: Pipeline, job: str) -> None:
        """Queue, on a pipeline, the commands that drop a job wherever it waits."""
        for key in [self.queue, *delayed_keys(self.queue)]:
            pipe.zrem(key, job)
        pipe.delete(keys.ARQ_JOB_PREFIX + job)

    async def waiting(self) -> int:
        """Jobs in the queue and the delayed sets (the queue-depth cap counts both)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in [self.queue, *delayed_keys(self.queue)]:
                pipe.zcard(key)
            return sum(await pipe.execute())


def due_ms(iso: str) -> int:
    """A start time in whole ms since the epoch, rounded up: the job falls due (by Redis' clock or the
    worker's, in whole ms rounded down) at that time or after it, never a fraction of a ms before."""
    micros = (datetime.fromisoformat(iso) - EPOCH) // MICROSECOND
    return -(-micros // 1000)


async def promote_forever(jobs: Jobs, delayed: asyncio.Event) -> None:
    """A worker's loop moving delayed jobs into the queue as they fall due (every worker runs it:
    the script is atomic, so a job moves once). Between looks it sleeps until the next job is due,
    or until `delayed` says a new delayed job was written (it may be due sooner)."""
    while True:
        delayed.clear()  # before the look: a job written during it wakes the next wait at once
        try:
            _, wait = await jobs.promote()
        except OUTAGES as exc:
            stop_if_cancelled()
            log.warning("could not move due jobs (%s); trying again", exc)
            wait = 1.0
        except Exception:  # a dead loop would leave every delayed job waiting: say why and go on
            stop_if_cancelled()
            log.exception("could not move due jobs; trying again")
            wait = 1.0
        await woken(delayed, PROMOTE_EVERY if wait is None else min(wait, PROMOTE_EVERY))
