"""Pausing a queue: new tasks are still accepted and wait, but no worker takes a job from it until it
is resumed (running tasks finish). The state is a Redis key, read by each worker whenever its control
channel (re)subscribes; a change is signalled to the workers on that channel, and to every dashboard
as a `queue` frame (web/live/hub.py)."""

from typing import Any, TypedDict

from redis.asyncio import Redis

from app.core import keys
from app.core.clock import utcnow
from app.core.wire import dumps

PAUSE, RESUME = "pause", "resume"  # control messages


class QueueState(TypedDict):
    queue: str
    paused: bool
    paused_at: str | None  # ISO 8601, when it was paused


def queue_frame(state: QueueState) -> str:
    return dumps({"type": "queue", **state})


async def queue_state(redis: Redis, queue: str) -> QueueState:
    since = await redis.get(keys.paused_key(queue))
    return _state(queue, since)


def _state(queue: str, since: Any) -> QueueState:
    at = since.decode() if isinstance(since, bytes) else since
    return {"queue": queue, "paused": at is not None, "paused_at": at}


class QueuePause:
    def __init__(self, redis: Redis, queue: str) -> None:
        self.redis = redis
        self.queue = queue

    async def pause(self) -> QueueState:
        """Paused (since the first pause, if it already was); workers and dashboards told."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.paused_key(self.queue), utcnow().isoformat(), nx=True)
            pipe.get(keys.paused_key(self.queue))
            _, since = await pipe.execute()
        return await self._announce(PAUSE, _state(self.queue, since))

    async def resume(self) -> QueueState:
        await self.redis.delete(keys.paused_key(self.queue))
        return await self._announce(RESUME, _state(self.queue, None))

    async def _announce(self, message: str, state: QueueState) -> QueueState:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.publish(keys.CONTROL, message)
            pipe.publish(keys.QUEUE_STATE, queue_frame(state))
            await pipe.execute()
        return state
