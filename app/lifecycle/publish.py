"""Publishing settled changes on the events channel: events and skips in seq order, with the figures
they add, in one round trip (one script: redis-py packs and parses each command of a pipeline in
Python, a script's arguments in one go)."""

import logging
from collections.abc import Sequence

from arq.connections import ArqRedis

from app.core import keys
from app.core.errors import OUTAGES
from app.metrics.tally import Tally

log = logging.getLogger(__name__)

# ARGV: the events channel, the logs channel, the number of events E, of log messages L and of figures F,
# then the E events, the L messages and the F (op, hash, field, value) figures of Tally.figures.
PUBLISH = """
local i = 6
for _ = 1, tonumber(ARGV[3]) do redis.call('PUBLISH', ARGV[1], ARGV[i]); i = i + 1 end
for _ = 1, tonumber(ARGV[4]) do redis.call('PUBLISH', ARGV[2], ARGV[i]); i = i + 1 end
for _ = 1, tonumber(ARGV[5]) do
  local op, key, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if op == 'i' then redis.call('HINCRBY', key, field, value)
  elseif op == 'f' then redis.call('HINCRBYFLOAT', key, field, value)
  elseif op == 'm' then
    local old = tonumber(redis.call('HGET', key, field))
    if not old or tonumber(value) > old then redis.call('HSET', key, field, value) end
  else redis.call('EXPIRE', key, value) end
  i = i + 4
end
"""


async def publish_all(redis: ArqRedis, payloads: list[str], tally: Tally | None = None,
                      logs: Sequence[str] = ()) -> None:
    """Publish changes (or skips) already stored, in this order, with the figures they add
    (metrics/tally.py) and the log lines written with them (`<task id>|<logs frame>`). If Redis went
    away in between, they stand: the web processes fill the gap from the database (the figures of those
    changes are lost)."""
    figures = tally.figures() if tally else []
    try:
        await redis.register_script(PUBLISH)(args=[keys.EVENTS, keys.LOGS, len(payloads), len(logs),
                                                   len(figures) // 4, *payloads, *logs, *figures])
    except OUTAGES as exc:
        log.warning("%d events not published (%s); the web will read them from the database", len(payloads), exc)
