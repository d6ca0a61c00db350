"""How a worker claims queued jobs (worker/resilient.py `CLAIM`): jobs another worker holds are passed
over for the next ones in line, however many there are, and each job is claimed once."""

from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis

from app.core import keys
from app.worker.resilient import ResilientWorker
from tests.support.waits import submit, wait_for_status

StartWorker = Callable[..., Awaitable[ResilientWorker]]


async def test_jobs_held_by_other_workers_are_passed_over_for_the_next_in_line(
    client: httpx.AsyncClient, start_worker: StartWorker, redis_url: str
) -> None:
    held = [await submit(client, "text_processing") for _ in range(10)]
    free = await submit(client, "text_processing")  # queued after them: last in line
    redis = aioredis.Redis.from_url(redis_url)
    try:
        for task in held:  # what another worker's claim leaves: the in-progress key, the job still queued
            await redis.set(keys.ARQ_IN_PROGRESS_PREFIX + keys.job_id(task["id"], task["dispatch"]), "1", px=60_000)
        worker = await start_worker(max_jobs=1)  # one slot: its first look offers ten held jobs first
        await wait_for_status(client, free["id"], {"SUCCESS"})
        for task in held:
            found = (await client.get(f"/api/tasks/{task['id']}")).json()
            assert found["status"] == "PENDING" and found["attempts"] == 0
        assert worker.jobs_complete == 1
    finally:
        await redis.aclose()
