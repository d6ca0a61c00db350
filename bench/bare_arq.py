"""The bare engine, the baseline of the end-to-end and submit scenarios: a no-op arq function drained
by a plain arq worker (the same concurrency as ours, `poll_delay` tuned down from arq's 0.5 s),
with JSON instead of pickle as our jobs use. Run as `python -m bench.bare_arq` by bench/drain.py and
bench/scaleout.py, which queue its jobs and read their results with the helpers below."""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import run_worker
from arq.connections import ArqRedis, RedisSettings, create_pool

QUEUE = "bench:bare"


async def noop(ctx: dict[str, Any]) -> None:
    return None


class WorkerSettings:
    functions = [noop]
    queue_name = QUEUE
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    max_jobs = int(os.environ.get("WORKER_CONCURRENCY", "10"))
    poll_delay = 0.01
    keep_result = 3600
    job_serializer = staticmethod(lambda value: json.dumps(value, default=str).encode())
    job_deserializer = staticmethod(json.loads)


@asynccontextmanager
async def queued_noops(redis_url: str, count: int) -> AsyncIterator[tuple[ArqRedis, list[str]]]:
    """`count` no-op jobs queued (500 at a time) for the bare workers: the pool, open for the block,
    and the jobs' ids."""
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE,
                             job_serializer=lambda value: json.dumps(value).encode())
    try:
        ids: list[str] = []
        for start in range(0, count, 500):
            jobs = await asyncio.gather(*(pool.enqueue_job("noop") for _ in range(start, min(count, start + 500))))
            ids += [job.job_id for job in jobs if job is not None]
        yield pool, ids
    finally:
        await pool.aclose()


async def results(pool: ArqRedis, ids: list[str], count: int) -> list[dict[str, Any]]:
    """The jobs' results as arq kept them (`st`, `ft`: start and finish, ms): all `count`, every one a success."""
    found = [json.loads(raw) for raw in await pool.mget([f"arq:result:{job_id}" for job_id in ids])]
    assert len(found) == count and all(r and r["s"] for r in found), "bare jobs missing or failed"
    return found


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
