"""Figures read live rather than counted: queue depth by priority, each web process's WebSocket
figures (written to Redis every few seconds), and the workers' queue-depth samples for the charts
(metrics/depth.py)."""

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from redis.asyncio import Redis

from app.core import keys
from app.core.errors import OUTAGES, cancelled, stop_if_cancelled
from app.core.keys import delayed_key
from app.core.liveset import members
from app.core.priority import Priority, band_range, of_score
from app.metrics.depth import SAMPLE, SAMPLE_EVERY, sample_args
from app.store.tasks import TaskStore

log = logging.getLogger(__name__)

WEB_EVERY = 2.0  # seconds between a web process's writes of its figures
WEB_TTL = 10.0  # seconds its figures count as live without a new write


async def queue_depth(redis: Redis, store: TaskStore, queue: str) -> dict[str, dict[Priority, int]]:
    """Jobs by priority: "queued" are due and waiting for a worker (arq keeps a job in its queue
    until it ends, so the jobs of running tasks are taken off); "delayed" wait for their time
    (a scheduled start, a retry's backoff)."""
    return (await _depth(redis, store, queue))[0]


async def _depth(redis: Redis, store: TaskStore, queue: str) -> tuple[dict[str, dict[Priority, int]], int]:
    """queue_depth, and how many jobs of running tasks are in arq's queue."""
    running = await store.running_jobs()
    async with redis.pipeline(transaction=False) as pipe:
        for priority in Priority:
            low, high = band_range(priority)
            pipe.zcount(queue, low, f"({high}")
        for priority in Priority:
            pipe.zcard(delayed_key(queue, priority))
        for task_id, dispatch in running:
            pipe.zscore(queue, keys.job_id(task_id, dispatch))
        found = await pipe.execute()
    n = len(Priority)
    queued = dict(zip(Priority, found[:n], strict=True))
    in_queue = [score for score in found[2 * n:] if score is not None]
    for score in in_queue:
        queued[of_score(score)] -= 1
    return ({"queued": {p: max(count, 0) for p, count in queued.items()},
             "delayed": dict(zip(Priority, found[n:2 * n], strict=True))}, len(in_queue))


async def sample_depth_forever(redis: Redis, store: TaskStore, queue: str) -> None:
    """A worker's loop: every SAMPLE_EVERY seconds, the queued jobs' count into the current minute's
    maximum and mean (every worker samples: the mean is over all their samples), and the running
    jobs' count for the scripts that note the depth between samples (metrics/depth.py)."""
    sample = redis.register_script(SAMPLE)
    while True:
        try:
            depth, running = await _depth(redis, store, queue)
            names, args = sample_args(time.time(), sum(depth["queued"].values()), running)
            await sample(keys=names, args=args)
        except OUTAGES as exc:
            stop_if_cancelled()
            log.warning("could not sample the queue depth (%s)", exc)
        except Exception:  # the charts lose a point; the worker must not lose the loop
            stop_if_cancelled()
            log.exception("could not sample the queue depth")
        await asyncio.sleep(SAMPLE_EVERY)


class WebFigures:
    """A web process's own figures (WebSocket clients, events fanned out), written to its Redis key
    every WEB_EVERY seconds while it runs, so that GET /metrics on any web process lists them all."""

    def __init__(self, redis: Redis, figures: Callable[[], dict[str, int]]) -> None:
        self.redis = redis
        self.figures = figures
        self.web_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._loop: asyncio.Task[None] | None = None

    async def write(self) -> None:
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.web_key(self.web_id), json.dumps(self.figures()), px=int(WEB_TTL * 1000))
            pipe.zadd(keys.WEBS, {self.web_id: now + WEB_TTL})
            pipe.zremrangebyscore(keys.WEBS, "-inf", now)
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            try:
                await self.write()
            except OUTAGES as exc:
                stop_if_cancelled()
                log.warning("could not write this web process's figures (%s)", exc)
            except Exception:  # /metrics loses this process's figures for a while; the loop must go on
                stop_if_cancelled()
                log.exception("could not write this web process's figures")
            await asyncio.sleep(WEB_EVERY)

    async def __aenter__(self) -> "WebFigures":
        self._loop = asyncio.create_task(self._run(), name="web-figures")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._loop is not None
        await cancelled([self._loop])
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(keys.WEBS, self.web_id)
                pipe.delete(keys.web_key(self.web_id))
                await pipe.execute()
        except OUTAGES:  # the key expires by itself
            pass


async def live_webs(redis: Redis) -> dict[str, dict[str, Any]]:
    """Each live web process's id → its last figures."""
    return {web: figures for web, _, figures in await members(redis, keys.WEBS, keys.web_key, live_at=time.time())
            if figures is not None}
