"""A worker's slots are for running task code: once a task's code has returned, its slot takes the next
job while the task's outcome is still being written (worker/resilient.py `_slot_freer`)."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from app.core import keys
from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.support.servers import make_settings
from tests.support.waits import submit, wait_for_status


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", TASK_MODULES="tests.support.slot_tasks")


async def test_a_slot_takes_the_next_job_while_the_last_ones_outcome_waits_for_the_database(
    client: httpx.AsyncClient, start_worker: Callable[..., Awaitable[ResilientWorker]], redis_url: str, db_url: str,
) -> None:
    holder = await submit(client, "hold_writes", database=db_url.split("///", 1)[1], seconds=3.0)
    after = await submit(client, "text_processing", text="next in line")
    redis = aioredis.Redis.from_url(redis_url)
    try:
        await start_worker(max_jobs=1)
        claimed = keys.ARQ_IN_PROGRESS_PREFIX + keys.job_id(after["id"], after["dispatch"])
        while not await redis.exists(claimed):  # the one slot took the next job …
            assert (await client.get(f"/api/tasks/{holder['id']}")).json()["status"] != "SUCCESS", \
                "the next job was claimed only once the first one's end was written"
            await asyncio.sleep(0.02)
        # … while the first task's end still waited for the write lock its code took
        assert (await client.get(f"/api/tasks/{holder['id']}")).json()["status"] == "RUNNING"
        assert (await wait_for_status(client, holder["id"], {"SUCCESS"}))["result_data"] == {"held": 3.0}
        await wait_for_status(client, after["id"], {"SUCCESS"})
    finally:
        await redis.aclose()
