"""Publishing settled changes on the events channel: events and skips in seq order, with the figures
they add, in one round trip."""

import logging

from arq.connections import ArqRedis

from app.core import keys
from app.core.errors import OUTAGES
from app.metrics.tally import Tally

log = logging.getLogger(__name__)


async def publish_all(redis: ArqRedis, payloads: list[str], tally: Tally | None = None) -> None:
    """Publish changes (or skips) already stored, in this order, with the figures they add
    (metrics/tally.py). If Redis went away in between, they stand: the web processes fill the gap from
    the database (the figures of those changes are lost)."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(keys.EVENTS, payload)
            if tally:
                tally.write(pipe)
            await pipe.execute()
    except OUTAGES as exc:
        log.warning("%d events not published (%s); the web will read them from the database", len(payloads), exc)
