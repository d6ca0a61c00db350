"""Cancel of pending, running and final tasks; cancel racing completion; hand-back on worker stop."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis

from app.core import keys
from app.worker.resilient import ResilientWorker
from tests.support.waits import submit, wait_for_progress, wait_for_status, wait_until

StartWorker = Callable[..., Awaitable[ResilientWorker]]
SLOW_BATCH = {"data": list(range(40)), "delay_per_item": 0.25}  # ~10 s unless stopped


async def test_cancel_pending_ends_it_at_once_and_it_never_runs(
    client: httpx.AsyncClient, start_worker: StartWorker
) -> None:
    task = await submit(client, "text_processing")
    response = await client.delete(f"/api/tasks/{task['id']}")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    await start_worker()
    later = await submit(client, "text_processing")  # queued after it: once this ran, the worker was past it
    await wait_for_status(client, later["id"], {"SUCCESS"})
    after = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert after["status"] == "CANCELLED" and after["attempts"] == 0 and after["started_at"] is None


async def test_cancel_running_stops_it_within_two_seconds_and_it_stays_cancelled(
    client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    task = await submit(client, "batch_processing", **SLOW_BATCH)
    await wait_for_progress(client, task["id"])
    started = time.monotonic()
    response = await client.delete(f"/api/tasks/{task['id']}")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "CANCELLED" and elapsed < 2.0, (cancelled["status"], elapsed)
    assert cancelled["cancel_requested"] is True and 0 < cancelled["progress"] < 100
    await wait_until(lambda: task["id"] not in worker.ctx["runner"].running(), "the attempt is over")
    later = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert later["status"] == "CANCELLED" and later["progress"] == cancelled["progress"]
    assert later["timeline"][-1]["status"] == "CANCELLED"


async def test_cancel_heard_while_the_claim_is_stored_stops_the_attempt_before_its_work(
    client: httpx.AsyncClient, worker: ResilientWorker
) -> None:
    """The cancel can only come once the claim is stored (the task is RUNNING), which may be before the
    worker holds the attempt: the signal heard in between is kept for it (worker/runner.py)."""
    runner = worker.ctx["runner"]
    storing = runner.moves.start
    requests: list[asyncio.Task[httpx.Response]] = []

    async def cancelled_once_stored(task_id: str, dispatch: int, worker_id: str) -> object:
        task = await storing(task_id, dispatch, worker_id)
        requests.append(asyncio.create_task(client.delete(f"/api/tasks/{task_id}")))
        await wait_until(lambda: task_id in runner.cancelled_early, "the worker hearing the cancel")
        return task

    runner.moves.start = cancelled_once_stored
    task = await submit(client, "batch_processing", **SLOW_BATCH)
    ended = await wait_for_status(client, task["id"], {"CANCELLED", "SUCCESS", "FAILED"}, timeout=5)
    assert ended["status"] == "CANCELLED" and ended["attempts"] == 1 and ended["progress"] == 0
    assert (await requests[0]).json()["status"] == "CANCELLED"


async def test_cancel_of_a_final_task_is_409(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    task = await submit(client, "text_processing")
    await wait_for_status(client, task["id"], {"SUCCESS"})
    response = await client.delete(f"/api/tasks/{task['id']}")
    assert response.status_code == 409 and "SUCCESS" in response.json()["detail"]


async def test_cancelled_task_retried_runs_to_success(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    task = await submit(client, "batch_processing", **SLOW_BATCH)
    await wait_for_status(client, task["id"], {"RUNNING"})
    assert (await client.delete(f"/api/tasks/{task['id']}")).json()["status"] == "CANCELLED"
    retried = (await client.post(f"/api/tasks/{task['id']}/retry")).json()
    assert retried["status"] == "PENDING" and retried["cancel_requested"] is False
    fast = await submit(client, "text_processing")  # the worker keeps serving other work meanwhile
    await wait_for_status(client, fast["id"], {"SUCCESS"})
    running = await wait_for_status(client, task["id"], {"RUNNING"})
    assert running["attempts"] == 2
    await client.delete(f"/api/tasks/{task['id']}")


async def test_cancel_racing_completion_ends_in_exactly_one_final_state(
    client: httpx.AsyncClient, worker: ResilientWorker, redis_url: str
) -> None:
    events: list[dict] = []
    redis = aioredis.Redis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.EVENTS)

    async def collect() -> None:
        async for message in pubsub.listen():
            payload = message["data"].decode().split("|", 4)
            if payload[1] != "skip":
                events.append(json.loads(payload[4]))

    collector = asyncio.create_task(collect())
    tasks = []
    for i in range(30):
        # each takes ~0.1-0.3 s; the cancel lands before, during or just after it finishes
        task = await submit(client, "batch_processing", data=[1, 2, 3], delay_per_item=0.03 + 0.01 * (i % 5))
        tasks.append(task["id"])
        await asyncio.sleep(0.01 * (i % 7))
        response = await client.delete(f"/api/tasks/{task['id']}")
        assert response.status_code in (200, 409)
    ended = {}
    for task_id in tasks:
        ended[task_id] = await wait_for_status(client, task_id, {"SUCCESS", "CANCELLED", "FAILED"})
    finals = {task_id: task["status"] for task_id, task in ended.items()}
    # every task's last change (its seq as stored) has come through the channel
    await wait_until(lambda: {task["seq"] for task in ended.values()} <= {e["seq"] for e in events},
                     "every final change published")
    collector.cancel()
    await pubsub.aclose()
    await redis.aclose()
    assert set(finals.values()) <= {"SUCCESS", "CANCELLED"}
    for task_id in tasks:
        # Two processes publish one task's changes (the web its cancel flag, the worker its
        # progress and end), so Redis may carry them out of order; the web releases them by seq.
        mine = sorted((e for e in events if e["task"]["id"] == task_id), key=lambda e: e["seq"])
        first_final = next(i for i, e in enumerate(mine) if e["task"]["status"] in ("SUCCESS", "CANCELLED"))
        assert all(e["task"]["status"] == finals[task_id] for e in mine[first_final:]), task_id
        stored = (await client.get(f"/api/tasks/{task_id}")).json()
        assert stored["status"] == finals[task_id]
        assert sum(e["status"] in ("SUCCESS", "CANCELLED") for e in stored["timeline"]) == 1


async def test_a_stopping_worker_hands_its_task_back_and_another_finishes_it(
    client: httpx.AsyncClient, start_worker: StartWorker
) -> None:
    first = await start_worker()
    task = await submit(client, "batch_processing", data=list(range(8)), delay_per_item=0.2)
    await wait_for_status(client, task["id"], {"RUNNING"})
    await first.close()
    handed = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert handed["status"] == "RETRYING" and handed["dispatch"] == 2
    await start_worker()
    done = await wait_for_status(client, task["id"], {"SUCCESS"})
    assert done["attempts"] == 2
    assert [e["status"] for e in done["timeline"]] == ["PENDING", "RUNNING", "RETRYING", "RUNNING", "SUCCESS"]
