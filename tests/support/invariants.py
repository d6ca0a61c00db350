"""What must hold of a task after any scenario: its attempts never overlap, and a queued task has its
arq job in Redis."""

import redis.asyncio as aioredis

from app.core import keys
from app.core.status import FINAL


def check_task_invariants(task: dict) -> None:
    """Starts in the timeline = attempts; every start follows the end of the attempt before it."""
    statuses = [e["status"] for e in task["timeline"]]
    assert statuses.count("RUNNING") == task["attempts"], statuses
    open_attempt = False
    for status in statuses:
        if status == "RUNNING":
            assert not open_attempt, f"overlapping attempts: {statuses}"
            open_attempt = True
        elif status in ("RETRYING", *FINAL):
            open_attempt = False


async def check_redis_agrees(redis_url: str, tasks: list[dict]) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    try:
        for task in tasks:
            job = keys.ARQ_JOB_PREFIX + keys.job_id(task["id"], task["dispatch"])
            if task["status"] in ("PENDING", "RETRYING"):
                assert await redis.exists(job), f"queued task {task['id']} has no arq job"
    finally:
        await redis.aclose()
