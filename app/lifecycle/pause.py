"""Pausing a queue: new tasks are still accepted and wait, but no worker takes a job from it until it
is resumed (running tasks finish). The state is a Redis key, read by each worker whenever its control
channel (re)subscribes; a change is signalled to the workers on that channel, and to every dashboard
as a `queue` frame (web/live/hub.py)."""

from typing import Any, TypedDict

from redis.asyncio import Redis

from app.core import keys
from app.core.clock import utcnow

PAUSE, RESUME = "pause", "resume"  # control messages

# KEYS: the pause key; ARGV: the change (PAUSE or RESUME), the time of a pause, the control channel, the
# queue-state channel, the queue. The change and its announcement in one step: of a pause and a resume
# racing each other (two requests, two web processes), the workers and the dashboards hear last the one
# the key holds (apart, a pause's messages could follow those of a resume that undid it, and the
# workers stay paused with no pause to resume). Returns the time it has been paused since, or nil.
CHANGE = """
if ARGV[1] == 'pause' then redis.call('SET', KEYS[1], ARGV[2], 'NX') else redis.call('DEL', KEYS[1]) end
local since = redis.call('GET', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], cjson.encode({type = 'queue', queue = ARGV[5], paused = since ~= false,
                                             paused_at = since or cjson.null}))
return since
"""


class QueueState(TypedDict):
    queue: str
    paused: bool
    paused_at: str | None  # ISO 8601, when it was paused


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
        self._change = redis.register_script(CHANGE)

    async def pause(self) -> QueueState:
        """Paused (since the first pause, if it already was); workers and dashboards told."""
        return await self._apply(PAUSE)

    async def resume(self) -> QueueState:
        return await self._apply(RESUME)

    async def _apply(self, change: str) -> QueueState:
        since = await self._change(keys=[keys.paused_key(self.queue)],
                                   args=[change, utcnow().isoformat(), keys.CONTROL, keys.QUEUE_STATE, self.queue])
        return _state(self.queue, since)
