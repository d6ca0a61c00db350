"""Publishing settled changes on the events channel: events and skips in seq order, with the figures
they add, in one round trip."""

import logging
from collections.abc import Sequence

from arq.connections import ArqRedis

from app.core import keys
from app.core.errors import OUTAGES
from app.metrics.tally import Tally

log = logging.getLogger(__name__)


async def publish_all(redis: ArqRedis, payloads: list[str], tally: Tally | None = None,
                      logs: Sequence[str] = ()) -> None:
    """Publish changes (or skips) already stored, in this order, with the figures they add
    (metrics/tally.py) and the log lines written with them (`<task id>|<logs frame>`). If Redis went
    away in between, they stand: the web processes fill the gap from the database (the figures of those
    changes are lost)."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(keys.EVENTS, payload)
            for message in logs:
                pipe.publish(keys.LOGS, message)
            if tally:
                tally.write(pipe)
            await pipe.execute()
    except OUTAGES as exc:
        log.warning("%d events not published (%s); the web will read them from the database", len(payloads), exc)
