"""Health of what the product depends on: Redis, the database, live workers, the event stream."""

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.heartbeat import live_workers
from app.hub import EventHub
from app.store import TaskStore

CHECK_TIMEOUT = 2.0


async def _redis(redis: Redis) -> dict[str, Any]:
    try:
        await asyncio.wait_for(redis.ping(), CHECK_TIMEOUT)
        workers = len(await asyncio.wait_for(live_workers(redis), CHECK_TIMEOUT))
    except (RedisError, OSError, TimeoutError) as exc:
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return {"ok": True, "live_workers": workers}


async def _database(store: TaskStore) -> dict[str, Any]:
    try:
        await asyncio.wait_for(store.ping(), CHECK_TIMEOUT)
    except Exception as exc:  # any driver error means the same thing here: not usable
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return {"ok": True, "dialect": store.dialect}


async def check(redis: Redis, store: TaskStore, hub: EventHub) -> tuple[bool, dict[str, Any]]:
    redis_state, db_state = await asyncio.gather(_redis(redis), _database(store))
    workers = redis_state.get("live_workers", 0)
    down = [name for name, state in (("redis", redis_state), ("database", db_state)) if not state["ok"]]
    if redis_state["ok"] and workers == 0:
        down.append("workers")
    body: dict[str, Any] = {
        "status": "ok" if not down else "unavailable",
        "redis": redis_state,
        "database": db_state,
        "workers": {"ok": workers > 0, "live": workers},
        "events": {"ok": hub.connected, "seq": hub.head, "clients": len(hub.clients)},
    }
    if down:
        body["detail"] = "down: " + ", ".join(down)
    return not down, body
