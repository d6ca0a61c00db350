"""`GET /api/health`: the state of what the product depends on: Redis, the database, live workers, the
event stream, and whether the queue is paused; 503 naming what is down."""

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request

from app.lifecycle.pause import queue_state
from app.store.db import Db
from app.web.live.hub import EventHub
from app.web.responses import JSONResponse
from app.worker.heartbeat import live_workers

CHECK_TIMEOUT = 2.0


async def _redis(redis: Redis, queue: str) -> dict[str, Any]:
    try:
        await asyncio.wait_for(redis.ping(), CHECK_TIMEOUT)
        workers = len(await asyncio.wait_for(live_workers(redis), CHECK_TIMEOUT))
        paused = await asyncio.wait_for(queue_state(redis, queue), CHECK_TIMEOUT)
    except (RedisError, OSError, TimeoutError) as exc:
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return {"ok": True, "live_workers": workers, "queue": paused}


async def _database(db: Db) -> dict[str, Any]:
    try:
        await asyncio.wait_for(db.ping(), CHECK_TIMEOUT)
    except Exception as exc:  # any driver error means the same thing here: not usable
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return {"ok": True, "dialect": db.dialect}


async def check(redis: Redis, db: Db, hub: EventHub, queue: str) -> tuple[bool, dict[str, Any]]:
    redis_state, db_state = await asyncio.gather(_redis(redis, queue), _database(db))
    workers = redis_state.get("live_workers", 0)
    queue_now = redis_state.pop("queue", None)
    down = [name for name, state in (("redis", redis_state), ("database", db_state)) if not state["ok"]]
    if redis_state["ok"] and workers == 0:
        down.append("workers")
    body: dict[str, Any] = {
        "status": "ok" if not down else "unavailable",
        "redis": redis_state,
        "database": db_state,
        "workers": {"ok": workers > 0, "live": workers},
        "events": {"ok": hub.connected, "seq": hub.head, "clients": len(hub.clients)},
        # a paused queue is no outage (its tasks wait by choice), but a probe should see it
        "queue": queue_now or {"queue": queue, "paused": None, "paused_at": None},
    }
    if down:
        body["detail"] = "down: " + ", ".join(down)
    return not down, body


async def health(request: Request) -> JSONResponse:
    state = request.state
    ok, body = await check(state.redis, state.stores.db, state.hub, state.settings.queue_name)
    return JSONResponse(body, status_code=200 if ok else 503)
