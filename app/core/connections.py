"""The Redis client shared by everything in a process, and arq's JSON (never pickle) serializers."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from app.core.wire import loads

REDIS_SOCKET_TIMEOUT = 5.0


def serialize_job(value: dict[str, Any]) -> bytes:
    # arq stores failures as exception objects; `str` keeps them readable instead of failing.
    try:
        return orjson.dumps(value, default=str)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, which `json` writes
        return json.dumps(value, default=str).encode()


def deserialize_job(data: bytes) -> dict[str, Any]:
    return loads(data)  # type: ignore[no-any-return]


def redis_client(url: str, queue_name: str) -> ArqRedis:
    """A lazily connecting client: a process starts even while Redis is down, and recovers with it."""
    pool = ConnectionPool.from_url(
        url, socket_connect_timeout=2.0, socket_timeout=REDIS_SOCKET_TIMEOUT, health_check_interval=10
    )
    return ArqRedis(
        pool,
        job_serializer=serialize_job,
        job_deserializer=deserialize_job,
        default_queue_name=queue_name,
    )


@asynccontextmanager
async def open_redis(url: str, queue_name: str) -> AsyncIterator[ArqRedis]:
    redis = redis_client(url, queue_name)
    try:
        yield redis
    finally:
        await redis.aclose(close_connection_pool=True)
