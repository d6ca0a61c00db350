"""One Redis pub/sub subscription that survives Redis going away: resubscribe with backoff, forever."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis

from app.core.errors import OUTAGES, cancel_leaked, stop_if_cancelled

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0


async def follow(
    redis: Redis,
    channels: Sequence[str],
    on_message: Callable[[str, str | None], None],
    *,
    on_subscribed: Callable[[], Awaitable[None]],
    on_lost: Callable[[], None] = lambda: None,
    wait: Callable[[], float] = lambda: 1.0,
) -> None:
    """Deliver each message as (channel, data) — ("", None) when `wait()` seconds pass without one —
    until cancelled.

    `on_subscribed` runs after every (re)subscription, before any message of that subscription, so
    the caller can resynchronise whatever it derived from messages it may have missed.
    """
    delay = BACKOFF_MIN
    while True:
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(*channels)
                await on_subscribed()
                delay = BACKOFF_MIN
                while True:
                    message = await pubsub.get_message(timeout=wait())
                    stop_if_cancelled()  # redis-py answers a cancel that lands as the wait ends with None
                    if message is None:
                        on_message("", None)
                    else:
                        on_message(message["channel"].decode(), message["data"].decode())
        except (*OUTAGES, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not cancel_leaked():
                raise
            stop_if_cancelled()
            on_lost()
            # the text, not the exception: a record kept by a log handler would keep its frames, and the
            # connection they hold, alive
            log.warning("subscription to %s lost (%s: %s); retrying in %.1fs", ", ".join(channels),
                        exc.__class__.__name__, str(exc), delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)
