"""Scheduled starts, priorities, re-runs, bulk actions and retention, through HTTP with real workers."""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.core.connections import open_redis
from app.core.keys import delayed_keys
from app.lifecycle.changes import Changes
from app.settings import Settings
from app.store import artifacts
from app.store.stores import open_stores
from app.store.uploads import upload_store
from app.tasks import configured_types
from app.worker.main import create_worker
from app.worker.resilient import ResilientWorker
from app.worker.retention import remove_expired
from tests.support.servers import make_settings
from tests.support.waits import receive, receive_until, submit, wait_for_status

StartWorker = Callable[..., Awaitable[ResilientWorker]]


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def test_a_delayed_task_waits_pending_with_its_time_and_never_starts_early(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    tasks = [await post(client, "/api/tasks/submit", {"task_type": "text_processing", "delay": 1.0 + i * 0.3})
             for i in range(3)]
    at = (datetime.now(UTC) + timedelta(seconds=1.2)).isoformat()
    tasks.append(await post(client, "/api/tasks/submit", {"task_type": "text_processing", "run_at": at}))
    listed = {t["id"]: t for t in (await client.get("/api/tasks/")).json()["tasks"]}
    for task in tasks:
        assert task["status"] == "PENDING" and task["run_at"] and task["next_run_at"] == task["run_at"]
        assert listed[task["id"]]["queue_position"] is None  # not in line yet: it waits for its time
    assert when(tasks[3]["run_at"]) == when(at)
    for task in tasks:
        done = await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=30)
        assert when(done["started_at"]) >= when(task["run_at"]), "started before its time"
        assert done["timeline"][0]["message"].startswith("scheduled for")


async def test_a_scheduled_task_can_be_cancelled_before_it_starts_and_leaves_no_job(
        client: httpx.AsyncClient, worker: ResilientWorker, redis_url: str, settings: Settings) -> None:
    task = await post(client, "/api/tasks/submit", {"task_type": "text_processing", "delay": 3600})
    redis = Redis.from_url(redis_url)
    try:
        assert sum([await redis.zcard(key) for key in delayed_keys(settings.queue_name)]) == 1
        cancelled = (await client.delete(f"/api/tasks/{task['id']}")).json()
        assert cancelled["status"] == "CANCELLED" and cancelled["next_run_at"] is None
        assert sum([await redis.zcard(key) for key in delayed_keys(settings.queue_name)]) == 0
    finally:
        await redis.aclose()


@pytest.mark.parametrize("body, field", [
    ({"delay": -1}, "delay"), ({"delay": "soon"}, "delay"), ({"run_at": "tomorrow"}, "run_at"),
    ({"run_at": "2030-01-01T10:00:00"}, "run_at"), ({"run_at": "2999-01-01T10:00:00Z"}, "run_at"),
    ({"run_at": "2030-01-01T10:00:00Z", "delay": 5}, "run_at"), ({"priority": "urgent"}, "priority"),
    ({"run_at": "0001-01-01T00:00:00+01:00"}, "run_at"), ({"run_at": "9999-12-31T23:59:59-01:00"}, "run_at"),
    ({"priority": {}}, "priority"),
])
async def test_bad_start_times_and_priorities_are_422_naming_the_field(
        client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await client.post("/api/tasks/submit", json={"task_type": "text_processing", **body})
    assert response.status_code == 422 and response.json()["detail"].startswith(f"{field}:"), response.text
    assert (await client.get("/api/tasks/")).json()["total"] == 0


async def test_higher_priority_work_starts_before_queued_lower_priority_work(
        client: httpx.AsyncClient, start_worker: StartWorker) -> None:
    order = ["low", "default", "high"] * 6
    submitted = [await post(client, "/api/tasks/submit", {"task_type": "text_processing", "priority": p})
                 for p in order]
    listed = {t["id"]: t for t in (await client.get("/api/tasks/", params={"limit": 100})).json()["tasks"]}
    positions = sorted(submitted, key=lambda t: listed[t["id"]]["queue_position"])
    assert [t["priority"] for t in positions] == ["high"] * 6 + ["default"] * 6 + ["low"] * 6
    await start_worker(max_jobs=1)
    done = [await wait_for_status(client, t["id"], {"SUCCESS"}, timeout=30) for t in submitted]
    started = sorted(done, key=lambda t: when(t["started_at"]))
    assert [t["priority"] for t in started] == ["high"] * 6 + ["default"] * 6 + ["low"] * 6
    for rank in ("high", "default", "low"):  # first come, first served within a priority
        same = [t for t in started if t["priority"] == rank]
        assert same == sorted(same, key=lambda t: when(t["created_at"]))
    high = (await client.get("/api/tasks/", params={"priority": "high"})).json()
    assert high["total"] == 6 and {t["priority"] for t in high["tasks"]} == {"high"}


async def test_a_delayed_high_priority_task_goes_ahead_of_the_queue_once_due(
        client: httpx.AsyncClient, start_worker: StartWorker) -> None:
    backlog = [await post(client, "/api/tasks/submit", {"task_type": "batch_processing", "parameters": {
        "data": [1, 2], "delay_per_item": 0.1}}) for _ in range(12)]
    urgent = await post(client, "/api/tasks/submit", {"task_type": "text_processing", "priority": "high",
                                                      "delay": 0.5})
    await start_worker(max_jobs=1)
    done = await wait_for_status(client, urgent["id"], {"SUCCESS"}, timeout=30)
    later = [t for t in [await wait_for_status(client, b["id"], {"SUCCESS"}, timeout=30) for b in backlog]
             if when(t["started_at"]) > when(done["started_at"])]
    assert len(later) >= 6, "the due high-priority task waited behind the default backlog"


async def test_rerun_with_changes_and_duplicate_keep_the_lineage(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    original = await post(client, "/api/tasks/submit", {"task_type": "text_processing", "priority": "low",
                                                         "parameters": {"text": "first words"}})
    await wait_for_status(client, original["id"], {"SUCCESS"})
    edited = await post(client, f"/api/tasks/{original['id']}/rerun", {"parameters": {"text": "second words here"}})
    duplicate = await post(client, f"/api/tasks/{original['id']}/rerun", {})
    assert edited["source_task_id"] == duplicate["source_task_id"] == original["id"]
    assert edited["parameters"]["text"] == "second words here" and edited["priority"] == "low"
    assert duplicate["parameters"] == original["parameters"] and edited["id"] != duplicate["id"]
    done = await wait_for_status(client, edited["id"], {"SUCCESS"})
    assert done["result_data"]["word_count"] == 3
    reruns = (await client.get("/api/tasks/", params={"source_task_id": original["id"]})).json()
    assert {t["id"] for t in reruns["tasks"]} == {edited["id"], duplicate["id"]} and reruns["total"] == 2
    assert (await client.get(f"/api/tasks/{original['id']}")).json()["status"] == "SUCCESS"  # left as it was
    bad = await client.post(f"/api/tasks/{original['id']}/rerun", json={"parameters": {"text": 5}})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("text:")
    assert (await client.post("/api/tasks/" + "0" * 32 + "/rerun", json={})).status_code == 404


async def test_bulk_dry_run_counts_equal_what_is_applied(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    waiting = [await post(client, "/api/tasks/submit", {"task_type": "text_processing", "delay": 3600})
               for _ in range(7)]
    finished = [await submit(client, "batch_processing", data=[1], delay_per_item=0) for _ in range(3)]
    for task in finished:
        await wait_for_status(client, task["id"], {"SUCCESS"})
    scope = {"filter": {"task_type": "text_processing"}}
    counted = await post(client, "/api/tasks/bulk", {"action": "cancel", **scope, "dry_run": True}, 200)
    assert counted == {"action": "cancel", "dry_run": True, "matched": 7, "eligible": 7, "applied": None,
                       "skipped": None}
    everything = await post(client, "/api/tasks/bulk", {"action": "cancel", "filter": {}, "dry_run": True}, 200)
    assert (everything["matched"], everything["eligible"]) == (10, 7)
    applied = await post(client, "/api/tasks/bulk", {"action": "cancel", **scope}, 200)
    assert (applied["applied"], applied["skipped"]) == (7, 0)
    assert (await client.get("/api/stats")).json()["counts"]["CANCELLED"] == 7

    retry_scope = {"ids": [t["id"] for t in waiting[:4]] + [finished[0]["id"], "f" * 32]}
    counted = await post(client, "/api/tasks/bulk", {"action": "retry", **retry_scope, "dry_run": True}, 200)
    assert (counted["matched"], counted["eligible"]) == (5, 4)
    applied = await post(client, "/api/tasks/bulk", {"action": "retry", **retry_scope}, 200)
    assert (applied["applied"], applied["skipped"]) == (4, 0)
    for task in waiting[:4]:
        await wait_for_status(client, task["id"], {"SUCCESS"}, timeout=30)  # retried: runs at once now


@pytest.mark.parametrize("body, field", [
    ({"action": "explode", "ids": ["a"]}, "action"), ({"action": "cancel"}, "ids"),
    ({"action": "cancel", "ids": [], "dry_run": True}, "ids"), ({"action": "cancel", "ids": "abc"}, "ids"),
    ({"action": "cancel", "filter": {"status": "LOST"}}, "filter.status"),
    ({"action": "cancel", "filter": {"colour": "red"}}, "filter.colour"),
    ({"action": "delete", "filter": {}, "dry_run": "yes"}, "dry_run"),
    ({"action": {}, "ids": ["a"]}, "action"), ({"action": "cancel", "filter": {"from": "0001-01-01T00:00:00+01:00"}},
                                                "filter.from"),
])
async def test_bad_bulk_requests_are_422_naming_the_field(
        client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await client.post("/api/tasks/bulk", json=body)
    assert response.status_code == 422 and response.json()["detail"].startswith(f"{field}:"), response.text


async def test_bulk_delete_removes_tasks_logs_and_artifacts_and_tells_the_dashboards(
        client: httpx.AsyncClient, worker: ResilientWorker, web: str, settings: Settings) -> None:
    image = await submit(client, "image_processing", image_count=1, operation="grayscale")
    kept = await post(client, "/api/tasks/submit", {"task_type": "text_processing", "delay": 3600})
    done = await wait_for_status(client, image["id"], {"SUCCESS"}, timeout=30)
    name = done["result_data"]["artifacts"][0]["name"]
    assert (await client.get(f"/api/tasks/{image['id']}/artifacts/{name}")).status_code == 200
    assert (await client.get(f"/api/tasks/{image['id']}/logs")).json()["lines"]
    async with connect(f"ws://{web}/ws") as ws:
        assert (await receive(ws))["type"] == "hello"
        counted = await post(client, "/api/tasks/bulk", {"action": "delete", "filter": {}, "dry_run": True}, 200)
        assert (counted["matched"], counted["eligible"]) == (2, 1)
        applied = await post(client, "/api/tasks/bulk", {"action": "delete", "filter": {}}, 200)
        assert (applied["applied"], applied["skipped"]) == (1, 0)
        frames = await receive_until(ws, lambda frame: frame["type"] == "deleted")
        assert frames[-1]["task_ids"] == [image["id"]]
    assert (await client.get(f"/api/tasks/{image['id']}")).status_code == 404
    assert (await client.get(f"/api/tasks/{image['id']}/artifacts/{name}")).status_code == 404
    assert not artifacts.directory(settings.data_dir, image["id"]).exists()
    assert (await client.get(f"/api/tasks/{kept['id']}")).json()["status"] == "PENDING"
    assert (await client.get("/api/stats")).json()["counts"]["SUCCESS"] == 0


async def test_retention_removes_only_finished_tasks_older_than_the_limit(
        client: httpx.AsyncClient, worker: ResilientWorker, settings: Settings, redis_url: str) -> None:
    old = await submit(client, "batch_processing", data=[1], delay_per_item=0)
    ended = datetime.fromisoformat((await wait_for_status(client, old["id"], {"SUCCESS"}))["completed_at"])
    recent = await submit(client, "batch_processing", data=[1], delay_per_item=0)
    waiting = await post(client, "/api/tasks/submit", {"task_type": "text_processing", "delay": 3600})
    await wait_for_status(client, recent["id"], {"SUCCESS"})
    # The pass runs by a clock at which `old` ended just over the limit ago: it goes; `recent`, which
    # ended after it, stays (an injected clock: no waiting for a task to age).
    limit = timedelta(days=1.0 / 86_400)
    now = ended + limit + timedelta(microseconds=1)
    async with open_stores(str(settings.database_url)) as stores, open_redis(redis_url, settings.queue_name) as redis:
        removed = await remove_expired(Changes(stores, redis), settings.data_dir, upload_store(settings),
                                       configured_types(settings), keep_days=1.0 / 86_400, now=now)
    assert removed == 1
    assert (await client.get(f"/api/tasks/{old['id']}")).status_code == 404
    for task in (recent, waiting):
        assert (await client.get(f"/api/tasks/{task['id']}")).status_code == 200


async def test_the_worker_runs_retention_by_itself(
        client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path, web: str) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", RETENTION_DAYS=str(1.0 / 86_400),
                             RETENTION_INTERVAL="0.2")
    worker = create_worker(settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        task = await submit(client, "batch_processing", data=[1], delay_per_item=0)
        deadline = asyncio.get_running_loop().time() + 20
        while (await client.get(f"/api/tasks/{task['id']}")).status_code != 404:
            assert asyncio.get_running_loop().time() < deadline, "retention never removed the finished task"
            await asyncio.sleep(0.1)
    finally:
        await worker.close()
        await asyncio.gather(running, return_exceptions=True)


async def test_an_older_database_gains_the_new_columns_with_their_defaults(db_url: str) -> None:
    async with open_stores(db_url):
        pass
    path = db_url.split("///", 1)[1]
    with sqlite3.connect(path) as raw:
        raw.execute("DROP INDEX IF EXISTS ix_tasks_source")
        for column in ("priority", "source_task_id"):
            raw.execute(f"ALTER TABLE tasks DROP COLUMN {column}")
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
        raw.execute("INSERT INTO tasks (id, task_type, status, parameters, progress, created_at, updated_at, "
                    "attempts, dispatch, seq, cancel_requested, timeline) VALUES ('ab', 'text_processing', "
                    f"'SUCCESS', '{{}}', 100, '{now}', '{now}', 1, 1, 1, 0, '[]')")
    async with open_stores(db_url) as stores:
        task = await stores.tasks.get("ab")
        assert task is not None and task["priority"] == "default" and task["source_task_id"] is None
