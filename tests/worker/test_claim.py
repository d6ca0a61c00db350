"""How a worker claims queued jobs (worker/resilient.py `CLAIM`): jobs another worker holds are passed
over for the next ones in line, however many there are, and each job is claimed once, with its payload."""

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
import redis.asyncio as aioredis
from arq.constants import retry_key_prefix

from app.core import keys
from app.settings import Settings
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


async def test_a_claimed_job_comes_with_its_payload_and_try_and_an_expired_one_leaves_the_queue(
    client: httpx.AsyncClient, start_worker: StartWorker, redis_url: str, settings: Settings,
    caplog: pytest.LogCaptureFixture
) -> None:
    """The claim script reads each job it claims (arq's own read is a round trip per job): the task runs
    from that payload; a job whose payload is gone (expired) is dropped from the queue with all its
    keys, not taken again on every look (the reconciler queues its task anew: tests/reliability)."""
    lost, kept = await submit(client, "text_processing"), await submit(client, "text_processing")
    lost_job = keys.job_id(lost["id"], lost["dispatch"])
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await redis.delete(keys.ARQ_JOB_PREFIX + lost_job)
        worker = await start_worker(max_jobs=1)
        await wait_for_status(client, kept["id"], {"SUCCESS"})
        for _ in range(100):
            if not await redis.zscore(settings.queue_name, lost_job):
                break
            await asyncio.sleep(0.05)
        assert await redis.zscore(settings.queue_name, lost_job) is None
        assert not await redis.exists(keys.ARQ_IN_PROGRESS_PREFIX + lost_job, retry_key_prefix + lost_job)
        assert f"job {lost_job} expired" in caplog.text
        assert worker.jobs_complete == 1  # the kept one, run from the payload the claim read
        assert not await redis.exists(retry_key_prefix + keys.job_id(kept["id"], kept["dispatch"]))
    finally:
        await redis.aclose()


async def test_jobs_that_end_together_are_all_finished(
    client: httpx.AsyncClient, start_worker: StartWorker, redis_url: str, settings: Settings
) -> None:
    """Jobs that end while a finish is in flight are finished together, in the next script call: every
    one leaves the queue with its keys (none stays to be claimed again)."""
    tasks = [await submit(client, "text_processing") for _ in range(30)]
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await start_worker(max_jobs=10)
        for task in tasks:
            await wait_for_status(client, task["id"], {"SUCCESS"})
        jobs = [keys.job_id(task["id"], task["dispatch"]) for task in tasks]
        for _ in range(100):
            if not await redis.zcard(settings.queue_name):
                break
            await asyncio.sleep(0.05)
        assert await redis.zcard(settings.queue_name) == 0
        assert not await redis.exists(*(prefix + job for job in jobs for prefix in (
            keys.ARQ_JOB_PREFIX, keys.ARQ_IN_PROGRESS_PREFIX, retry_key_prefix)))
    finally:
        await redis.aclose()
