"""Retries, timeouts, idempotent submit, crash recovery and the reconciler, with real workers.

After each scenario the invariants are checked on the database and Redis: every task final (or
legitimately queued), `attempts` equal to the starts in its timeline, no start while another
attempt of the same task was still open, and every queued task's arq job present.
"""

import asyncio
import os
import random
import statistics
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from app.core import keys
from app.core.status import FINAL
from app.main import create_app
from app.settings import Settings
from app.worker.main import create_worker
from launcher.redis_server import free_port
from tests.support.invariants import check_redis_agrees, check_task_invariants
from tests.support.processes import process_env, workers
from tests.support.servers import make_settings, serve
from tests.support.waits import submit, wait_for_progress, wait_for_status, wait_until

CHAOS_FULL = os.environ.get("CHAOS_FULL") == "1"  # the full-size chaos runs; CI runs them reduced


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every scenario here runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    return any_db_url

SLOW = {"data": list(range(20)), "delay_per_item": 0.1}  # ~2 s


async def test_a_transient_failure_is_retried_with_backoff_then_fails_after_n_attempts(
    redis_url: str, db_url: str, tmp_path: Path, start_worker
) -> None:
    settings = make_settings(redis_url, db_url, tmp_path, SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    server, serving, address = await serve(settings)
    try:
        worker = create_worker(settings, handle_signals=False)
        running = asyncio.create_task(worker.async_run())
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            response = await client.post("/api/tasks/submit", json={
                "task_type": "email_simulation", "parameters": {"recipient_count": 2, "delay_per_email": 0},
                "max_attempts": 3})
            task = response.json()
            seen_retrying = None
            while (current := (await client.get(f"/api/tasks/{task['id']}")).json())["status"] not in FINAL:
                if current["status"] == "RETRYING" and seen_retrying is None:
                    seen_retrying = current
                await asyncio.sleep(0.02)
        assert seen_retrying is not None and seen_retrying["next_run_at"] and seen_retrying["error_message"]
        assert current["status"] == "FAILED" and current["attempts"] == 3
        assert current["error_message"].startswith("failed after 3 attempts:")
        retries = [e for e in current["timeline"] if e["status"] == "RETRYING"]
        assert len(retries) == 2 and all("refused" in e["message"].lower() or "connect" in e["message"].lower()
                                         for e in retries)
        starts = [e["at"] for e in current["timeline"] if e["status"] == "RUNNING"]
        gaps = [(datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
                for a, b in zip(starts, starts[1:])]
        assert 0.5 <= gaps[0] and gaps[0] < gaps[1] + 1.0  # backoff: 0.5-1 s, then 1-2 s
        check_task_invariants(current)
    finally:
        await worker.close()
        await asyncio.gather(running, return_exceptions=True)
        server.should_exit = True
        await serving


async def test_an_attempt_past_its_time_limit_is_stopped_and_failed(client: httpx.AsyncClient, worker) -> None:
    # 1 s of a ~2 s task: room for a busy machine to get past the first item (progress > 0)
    response = await client.post("/api/tasks/submit", json={"task_type": "batch_processing", "parameters": SLOW,
                                                            "timeout": 1.0})
    task = response.json()
    assert task["timeout"] == 1.0
    done = await wait_for_status(client, task["id"], FINAL)
    assert done["status"] == "FAILED" and done["error_message"] == "timed out after 1 s"
    assert done["attempts"] == 1 and 0 < done["progress"] < 100


async def test_bad_limits_are_refused(client: httpx.AsyncClient) -> None:
    for body, field in (({"max_attempts": 0}, "max_attempts"), ({"timeout": -1}, "timeout"),
                        ({"max_attempts": "3"}, "max_attempts")):
        response = await client.post("/api/tasks/submit", json={"task_type": "text_processing", **body})
        assert response.status_code == 422 and response.json()["field"] == field


async def test_idempotency_key_returns_the_first_task(client: httpx.AsyncClient) -> None:
    body = {"task_type": "text_processing", "parameters": {"text": "once"}}
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/api/tasks/submit", json=body, headers=headers)
    again = await client.post("/api/tasks/submit", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200 and again.json()["id"] == first.json()["id"]
    racing = await asyncio.gather(*[client.post("/api/tasks/submit", json=body, headers={"Idempotency-Key": "k2"})
                                    for _ in range(8)])
    assert len({r.json()["id"] for r in racing}) == 1 and sorted(r.status_code for r in racing)[0] == 200
    assert [r.status_code for r in racing].count(201) == 1
    other = await client.post("/api/tasks/submit", json={**body, "parameters": {"text": "twice"}}, headers=headers)
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert (await client.get("/api/tasks/")).json()["total"] == 2


async def test_the_reconciler_requeues_a_task_whose_job_was_lost(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    settings: Settings = make_settings(redis_url, db_url, tmp_path, RECONCILE_INTERVAL="0.5", RECONCILE_GRACE="1")
    server, serving, address = await serve(settings)
    redis = aioredis.Redis.from_url(redis_url)
    worker = None
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            task = await submit(client, "text_processing")
            job = keys.job_id(task["id"], 1)
            await redis.delete(keys.ARQ_JOB_PREFIX + job)  # as if the job had expired or been dropped
            await redis.zrem(settings.queue_name, job)
            worker = create_worker(settings, handle_signals=False)
            running = asyncio.create_task(worker.async_run())
            started = time.monotonic()
            done = await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=10)
            assert time.monotonic() - started < 2 * 0.5 + 1 + 2  # two reconcile periods past the grace
            assert done["dispatch"] == 2 and "lost" in done["timeline"][1]["message"]
            check_task_invariants(done)
    finally:
        if worker is not None:
            await worker.close()
            await asyncio.gather(running, return_exceptions=True)
        await redis.aclose()
        server.should_exit = True
        await serving


@pytest.mark.timeout(600)
async def test_killed_workers_tasks_are_recovered_in_seconds_nothing_lost(
    client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path
) -> None:
    """Tasks of ~2 s (1 s reduced); the worker SIGKILLed at random moments, restarted each time.
    Full size (CHAOS_FULL=1): 100 tasks and 10 kills; reduced: 20 tasks and 4 kills."""
    count, kills, items = (100, 10, 20) if CHAOS_FULL else (20, 4, 10)
    env = process_env(redis_url, db_url, tmp_path / "data")
    rng = random.Random(7)
    with workers(env, tmp_path) as pool:
        current = pool.start()
        tasks = [await submit(client, "batch_processing", data=list(range(items)), delay_per_item=0.1)
                 for _ in range(count)]
        recoveries = []
        for _ in range(kills):
            running = await _wait_any_running(client, tasks)
            await asyncio.sleep(rng.uniform(0.05, 0.9))
            pool.kill(current)
            killed_at = time.monotonic()
            current = pool.start()
            recoveries.append(await _recovered_after(client, running, killed_at))
        finals = [await wait_for_status(client, t["id"], FINAL, timeout=120) for t in tasks]
    assert [t["status"] for t in finals] == ["SUCCESS"] * count  # none lost, none stuck
    for task in finals:
        check_task_invariants(task)
    await check_redis_agrees(redis_url, finals)
    assert max(recoveries) < 10, recoveries
    assert sum(t["attempts"] > 1 for t in finals) >= kills  # every interrupted task was run again
    print(f"\nrecovery after SIGKILL over {kills} kills: p50 {statistics.median(recoveries):.2f} s, "
          f"max {max(recoveries):.2f} s; re-run tasks {sum(t['attempts'] > 1 for t in finals)}/{count}")


def _running_attempt(response: httpx.Response, attempt: int) -> bool:
    task = response.json()
    return task["status"] == "RUNNING" and task["attempts"] == attempt


async def _wait_any_running(client: httpx.AsyncClient, tasks: list[dict]) -> str:
    while True:
        listing = (await client.get("/api/tasks/", params={"status": "RUNNING"})).json()["tasks"]
        if listing:
            return listing[0]["id"]
        await asyncio.sleep(0.02)


async def _recovered_after(client: httpx.AsyncClient, task_id: str, killed_at: float) -> float:
    """Seconds from the kill until the watchdog moved the killed attempt on."""
    while True:
        task = (await client.get(f"/api/tasks/{task_id}")).json()
        if task["status"] != "RUNNING" or task["attempts"] > 1 and task["timeline"][-1]["status"] == "RUNNING" \
                and task["timeline"][-2]["status"] == "RETRYING":
            return time.monotonic() - killed_at
        assert time.monotonic() - killed_at < 30, "killed attempt never recovered"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(120)
async def test_a_task_that_kills_every_worker_fails_after_its_attempts_and_other_work_goes_on(
    client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path
) -> None:
    env = process_env(redis_url, db_url, tmp_path / "data")
    with workers(env, tmp_path) as pool:
        poison = (await client.post("/api/tasks/submit", json={
            "task_type": "batch_processing", "parameters": SLOW, "max_attempts": 2})).json()
        for attempt in (1, 2):
            proc = pool.start()
            while not _running_attempt(await client.get(f"/api/tasks/{poison['id']}"), attempt):
                await asyncio.sleep(0.02)
            pool.kill(proc)  # this task "kills" whatever worker runs it
        pool.start()
        done = await wait_for_status(client, poison["id"], FINAL, timeout=30)
        other = await submit(client, "text_processing")
        assert (await wait_for_status(client, other["id"], FINAL))["status"] == "SUCCESS"
    assert done["status"] == "FAILED" and done["attempts"] == 2
    assert "failed after 2 attempts" in done["error_message"] and "stopped responding" in done["error_message"]
    check_task_invariants(done)


@pytest.mark.timeout(120)
async def test_rolling_sigterm_restarts_hand_work_back_and_everything_succeeds(
    client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path
) -> None:
    env = process_env(redis_url, db_url, tmp_path / "data", SHUTDOWN_GRACE="0.3", WORKER_CONCURRENCY="4")
    with workers(env, tmp_path) as pool:
        current = pool.start()
        tasks = [await submit(client, "batch_processing", data=list(range(10)), delay_per_item=0.1)
                 for _ in range(12)]
        restarts = 3
        for _ in range(restarts):
            await wait_for_progress(client, await _wait_any_running(client, tasks))  # inside its work
            successor = pool.start()
            assert pool.terminate(current) == 0
            current = successor
        finals = [await wait_for_status(client, t["id"], FINAL, timeout=60) for t in tasks]
    assert [t["status"] for t in finals] == ["SUCCESS"] * 12
    for task in finals:
        check_task_invariants(task)
        assert task["attempts"] <= 1 + restarts
    handed_back = [t for t in finals if "worker stopped; queued again" in str(t["timeline"])]
    assert handed_back  # some work was running at a restart and was handed back, not lost


async def test_cancel_of_ten_running_tasks_ends_all_with_no_event_after_cancelled(
    client: httpx.AsyncClient, start_worker, redis_url: str
) -> None:
    worker = await start_worker(max_jobs=10)
    redis = aioredis.Redis.from_url(redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.EVENTS)
    events: list[tuple[str, str, str]] = []

    async def collect() -> None:
        async for message in pubsub.listen():
            _, change, task_id, status, _ = message["data"].decode().split("|", 4)
            events.append((task_id, change, status))

    collector = asyncio.create_task(collect())
    tasks = [await submit(client, "batch_processing", data=list(range(100)), delay_per_item=0.05) for _ in range(10)]
    for task in tasks:
        await wait_for_progress(client, task["id"])  # inside its work
    answers = await asyncio.gather(*[client.delete(f"/api/tasks/{t['id']}") for t in tasks])
    # Nothing of the attempts can follow once the worker runs none of them and their ends came through.
    await wait_until(lambda: not worker.ctx["runner"].running(), "the ten attempts are over")
    await wait_until(lambda: {t["id"] for t in tasks} <= {e[0] for e in events if e[2] == "CANCELLED"},
                     "every CANCELLED event published")
    collector.cancel()
    await pubsub.aclose()
    await redis.aclose()
    assert [a.json()["status"] for a in answers] == ["CANCELLED"] * 10
    for task in tasks:
        mine = [e for e in events if e[0] == task["id"]]
        cancelled_at = [i for i, e in enumerate(mine) if e[2] == "CANCELLED"]
        assert len(cancelled_at) == 1 and cancelled_at[0] == len(mine) - 1, mine[-3:]


async def test_operators_set_per_type_limits_and_unknown_names_are_refused(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url, db_url, tmp_path, TASK_TIMEOUTS="batch_processing=0.4",
                             TASK_MAX_ATTEMPTS="email_simulation=5")
    server, serving, address = await serve(settings)
    worker = create_worker(settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
            types = {t["name"]: t for t in (await client.get("/api/task-types")).json()["task_types"]}
            assert types["batch_processing"]["timeout"] == 0.4 and types["email_simulation"]["max_attempts"] == 5
            task = await submit(client, "batch_processing", **SLOW)
            done = await wait_for_status(client, task["id"], FINAL)
            assert done["status"] == "FAILED" and done["error_message"] == "timed out after 0.4 s"
    finally:
        await worker.close()
        await asyncio.gather(running, return_exceptions=True)
        server.should_exit = True
        await serving
    with pytest.raises(ValueError, match="no task type 'nope'"):
        create_app(make_settings(redis_url, db_url, tmp_path, TASK_TIMEOUTS="nope=3"))
    with pytest.raises(ValueError, match="TASK_TIMEOUTS"):
        make_settings(redis_url, db_url, tmp_path, TASK_TIMEOUTS="batch_processing")
