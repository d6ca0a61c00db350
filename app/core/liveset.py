"""Processes that announce themselves to the others: a sorted set of id → deadline, and each one's
JSON description under its own key (workers: worker/heartbeat.py; web processes: metrics/figures.py)."""

import json
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis


async def members(redis: Redis, zset: str, key_of: Callable[[str], str],
                  live_at: float | None = None) -> list[tuple[str, float, dict[str, Any] | None]]:
    """Each member with its deadline and its description (None once that key expired), by deadline:
    every member, or with `live_at` only those whose deadline is not past at that time."""
    if live_at is None:
        entries = await redis.zrange(zset, 0, -1, withscores=True)
    else:
        entries = await redis.zrangebyscore(zset, live_at, "+inf", withscores=True)
    ids = [member.decode() for member, _ in entries]
    found = await redis.mget([key_of(member) for member in ids]) if ids else []
    return [(member, deadline, json.loads(state) if state else None)
            for member, (_, deadline), state in zip(ids, entries, found, strict=True)]
