"""Worker liveness: each worker refreshes its own key and deadline; health and views count them.

arq's health-check key is one per queue and deleted by whichever worker stops first, so it cannot
say how many workers are alive.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from app.core import keys
from app.core.errors import OUTAGES, stop_if_cancelled
from app.core.liveset import members
from app.core.wire import dumps

log = logging.getLogger(__name__)

FORGET_AFTER = 3600.0  # seconds after its deadline a silent worker is dropped from the set
STOPPED_KEEP = 600.0  # seconds a worker that stopped cleanly stays listed (as stopped)


class Heartbeat:
    def __init__(
        self, redis: Redis, worker_id: str, info: dict[str, Any], *, interval: float, ttl: float,
        running: Callable[[], list[str]], counts: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.info = info
        self.interval = interval
        self.ttl = ttl
        self.running = running
        self.counts = counts  # attempts this worker ended, by outcome, since it started

    async def beat(self) -> None:
        now = time.time()
        state = {**self.info, "last_heartbeat": now, "running": self.running(), **self.counts()}
        async with self.redis.pipeline(transaction=True) as pipe:
            # The description outlives the deadline, so a lost worker is still shown with its host,
            # pid and counts until it is forgotten; whether it is live is the deadline's alone.
            pipe.set(keys.worker_key(self.worker_id), json.dumps(state), px=int((self.ttl + FORGET_AFTER) * 1000))
            pipe.zadd(keys.WORKERS, {self.worker_id: now + self.ttl})
            pipe.zremrangebyscore(keys.WORKERS, "-inf", now - FORGET_AFTER)
            pipe.publish(keys.WORKER_BEATS, worker_frame(self.worker_id, {**state, "state": "live"}, self.ttl))
            await pipe.execute()

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except OUTAGES as exc:
                stop_if_cancelled()
                log.warning("heartbeat failed (%s); retrying", exc)
            except Exception:  # a silent heartbeat gets this worker's tasks taken away: keep beating
                stop_if_cancelled()
                log.exception("heartbeat failed; retrying")
            await asyncio.sleep(self.interval)

    async def remove(self) -> None:
        """A clean stop: no longer live at once (its tasks were handed back), listed as stopped for
        STOPPED_KEEP seconds."""
        now = time.time()
        state = {**self.info, "last_heartbeat": now, "running": [], **self.counts(), "stopped": now}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.worker_key(self.worker_id), json.dumps(state), px=int(STOPPED_KEEP * 1000))
            # Scored as a deadline long past: never live, and pruned with the silent ones STOPPED_KEEP from now.
            pipe.zadd(keys.WORKERS, {self.worker_id: now + STOPPED_KEEP - FORGET_AFTER})
            pipe.publish(keys.WORKER_BEATS, worker_frame(self.worker_id, {**state, "state": "stopped"}, self.ttl))
            await pipe.execute()


def worker_frame(worker_id: str, worker: dict[str, Any], ttl: float) -> str:
    """One heartbeat as published, `<worker id>|<WebSocket message>`: the web processes forward the
    message as it is, and by the id keep only a worker's latest beat for a client that is behind."""
    return f"{worker_id}|{dumps({'type': 'worker', 'worker': worker, 'ttl': ttl})}"


async def live_workers(redis: Redis) -> dict[str, dict[str, Any]]:
    """Each live worker's id → its last heartbeat (host, pid, queues, the tasks it runs, …)."""
    return {worker: beat or {"id": worker, "running": []}
            for worker, _, beat in await members(redis, keys.WORKERS, keys.worker_key, live_at=time.time())}
