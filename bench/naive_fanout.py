"""The naive fan-out the benchmark compares against: one Redis subscription and
`for ws in clients: await ws.send_text(msg)`, as a Starlette app served by uvicorn with the same
flags as the product's web process.

Run: `uvicorn bench.naive_fanout:create_app --factory` with REDIS_URL set.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.core import keys


def create_app() -> Starlette:
    clients: set[WebSocket] = set()

    async def relay(redis: Redis) -> None:
        async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(keys.EVENTS)
            async for message in pubsub.listen():
                msg = message["data"].decode().split("|", 4)[4]  # the client frame of our wire format
                for ws in list(clients):
                    try:
                        await ws.send_text(msg)
                    except (WebSocketDisconnect, RuntimeError, OSError):
                        clients.discard(ws)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        clients.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            clients.discard(ws)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = Redis.from_url(os.environ["REDIS_URL"])
        task = asyncio.create_task(relay(redis))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
