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

from app import keys
from app.errors import OUTAGES

log = logging.getLogger(__name__)

FORGET_AFTER = 3600.0  # seconds after its deadline a silent worker is dropped from the set


class Heartbeat:
    def __init__(
        self, redis: Redis, worker_id: str, info: dict[str, Any], *, interval: float, ttl: float,
        running: Callable[[], list[str]],
    ) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.info = info
        self.interval = interval
        self.ttl = ttl
        self.running = running

    async def beat(self) -> None:
        now = time.time()
        state = {**self.info, "last_heartbeat": now, "running": self.running()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.worker_key(self.worker_id), json.dumps(state), px=int(self.ttl * 1000))
            pipe.zadd(keys.WORKERS, {self.worker_id: now + self.ttl})
            pipe.zremrangebyscore(keys.WORKERS, "-inf", now - FORGET_AFTER)
            await pipe.execute()

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except OUTAGES as exc:
                log.warning("heartbeat failed (%s); retrying", exc)
            except Exception:  # a silent heartbeat gets this worker's tasks taken away: keep beating
                log.exception("heartbeat failed; retrying")
            await asyncio.sleep(self.interval)

    async def remove(self) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.WORKERS, self.worker_id)
            pipe.delete(keys.worker_key(self.worker_id))
            await pipe.execute()


async def live_workers(redis: Redis) -> dict[str, dict[str, Any]]:
    """Each live worker's id → its last heartbeat (host, pid, queues, the tasks it runs, …)."""
    ids = [member.decode() for member in await redis.zrangebyscore(keys.WORKERS, time.time(), "+inf")]
    states = await redis.mget([keys.worker_key(worker) for worker in ids]) if ids else []
    return {worker: json.loads(state) if state else {"id": worker, "running": []}
            for worker, state in zip(ids, states, strict=True)}
