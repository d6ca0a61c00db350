"""GET /metrics and GET /api/metrics/series against a real Redis, real workers and real tasks: the
figures must equal the tasks run, on every web process."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.core.connections import open_redis
from app.core.status import CANCEL, CANCEL_REQUEST, MANUAL_RETRY, REQUEUE, START, STOP
from app.metrics.series import SETTLE, MinuteCache, quantile
from app.metrics.tally import BUCKETS, Tally, bucket, minute_key
from app.settings import Settings
from app.worker.main import create_worker
from launcher.redis_server import free_port
from tests.support.servers import make_settings, served
from tests.support.waits import receive, submit, wait_for_status

FINAL = {"SUCCESS", "FAILED", "CANCELLED"}
TYPES = ("text_processing", "batch_processing", "email_simulation")


@pytest.fixture
def settings(redis_url: str, any_db_url: str, tmp_path: Path) -> Settings:
    # No SMTP server listens there: every e-mail attempt fails with a transient (retried) error.
    # On PostgreSQL too: there the group writer commits each change on its own (lifecycle/groups.py).
    return make_settings(redis_url, any_db_url, tmp_path / "data", SMTP_URL=f"smtp://127.0.0.1:{free_port()}")


# -- quantiles from bucket counts ---------------------------------------------------------------

def counts(**at: int) -> list[int]:
    """Bucket counts with `at` observations in the bucket of each named bound (b1 = BUCKETS[1], inf)."""
    found = [0] * (len(BUCKETS) + 1)
    for name, n in at.items():
        found[len(BUCKETS) if name == "inf" else int(name[1:])] = n
    return found


def test_quantile_of_nothing_is_none() -> None:
    assert quantile(0.5, counts()) is None


def test_quantile_interpolates_inside_the_bucket() -> None:
    # 10 observations in (0.5, 1]: the median is halfway through it, p95 95 % of the way.
    assert quantile(0.5, counts(b7=10)) == pytest.approx(0.75)
    assert quantile(0.95, counts(b7=10)) == pytest.approx(0.975)


def test_quantile_first_bucket_starts_at_zero() -> None:
    assert quantile(0.5, counts(b0=4)) == pytest.approx(0.0025)


def test_quantile_crosses_buckets() -> None:
    # 5 in (0, 0.005], 5 in (1, 2.5]: rank 9.5 of 10 is 4.5 of 5 into the second one.
    found = counts(b0=5, b8=5)
    assert quantile(0.5, found) == pytest.approx(0.005)
    assert quantile(0.95, found) == pytest.approx(1.0 + 1.5 * 4.5 / 5)


def test_quantile_in_the_inf_bucket_is_the_highest_bound() -> None:
    assert quantile(0.95, counts(b3=1, inf=99)) == BUCKETS[-1]


def test_a_value_on_a_bound_falls_in_that_bucket() -> None:
    assert bucket(0.0) == 0 and bucket(0.005) == 0 and bucket(0.0051) == 1
    assert bucket(3600.0) == len(BUCKETS) - 1 and bucket(3600.1) == len(BUCKETS)


# -- what a change counts ------------------------------------------------------------------------

def task(status: str, **fields: Any) -> dict[str, Any]:
    base = {"task_type": "text_processing", "status": status, "attempts": 1, "created_at": "2026-01-01T00:00:00+00:00",
            "run_at": None, "started_at": "2026-01-01T00:00:02+00:00", "completed_at": None,
            "updated_at": "2026-01-01T00:00:03+00:00"}
    return {**base, **fields}


def test_a_cancel_request_is_not_a_start_and_a_queued_cancel_is_not_a_run() -> None:
    tally = Tally()
    tally.observe(task("RUNNING"), CANCEL_REQUEST)  # cancel_requested set: still RUNNING
    tally.observe(task("CANCELLED", completed_at="2026-01-01T00:00:05+00:00"), CANCEL)
    tally.observe(task("PENDING"), REQUEUE)  # the reconciler queueing a lost job again
    assert dict(tally.counts) == {("tq:metrics", "cancelled|text_processing"): 1}


def test_a_run_and_a_wait_are_observed_once_each() -> None:
    tally = Tally()
    tally.observe(task("RUNNING", run_at="2026-01-01T00:00:01+00:00"), START)
    tally.observe(task("CANCELLED", completed_at="2026-01-01T00:00:05+00:00"), STOP)
    tally.observe(task("PENDING", started_at=None), MANUAL_RETRY)
    tally.observe(task("RUNNING", attempts=2), START)  # not a first attempt: no wait
    found = {field: n for (_, field), n in tally.counts.items()}
    assert found[f"wait|text_processing|{bucket(1.0)}"] == 1  # started 1 s after run_at
    assert found[f"run|text_processing|{bucket(3.0)}"] == 1  # ran 3 s
    assert found["started|text_processing"] == 2 and found["retried|text_processing"] == 1
    assert tally.sums[("tq:metrics", "run_sum|text_processing")] == pytest.approx(3.0)


# -- real tasks ----------------------------------------------------------------------------------

def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def by_type(family: Any, suffix: str = "_total") -> dict[str, float]:
    return {s.labels["task_type"]: s.value for s in family.samples if s.name == family.name + suffix}


async def scrape(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return families(response.text)


async def run_mix(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Three successes, an e-mail failing twice (one automatic retry), a running and a queued task
    cancelled, and the queued one retried by hand to success."""
    ok = [await submit(client, "text_processing", text="one two"), await submit(client, "text_processing"),
          await submit(client, "batch_processing", data=["a", "b"], delay_per_item=0)]
    failing = (await client.post("/api/tasks/submit", json={
        "task_type": "email_simulation", "parameters": {"recipient_count": 1, "delay_per_email": 0},
        "max_attempts": 2})).json()
    slow = await submit(client, "batch_processing", data=["x"] * 50, delay_per_item=0.2)
    later = (await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 3600})).json()
    await wait_for_status(client, slow["id"], {"RUNNING"})
    assert (await client.delete(f"/api/tasks/{slow['id']}")).json()["status"] in {"RUNNING", "CANCELLED"}
    assert (await client.delete(f"/api/tasks/{later['id']}")).json()["status"] == "CANCELLED"
    assert (await client.post(f"/api/tasks/{later['id']}/retry")).status_code == 200
    tasks = [*ok, failing, slow, later]
    return [await wait_for_status(client, t["id"], FINAL, timeout=30) for t in tasks]


async def test_metrics_equal_the_tasks_run(client: httpx.AsyncClient, worker: Any) -> None:
    done = await run_mix(client)
    assert [t["status"] for t in done] == ["SUCCESS", "SUCCESS", "SUCCESS", "FAILED", "CANCELLED", "SUCCESS"]
    found = await scrape(client)
    expected = {
        "tq_tasks_submitted": {"text_processing": 3, "batch_processing": 2, "email_simulation": 1},
        "tq_tasks_started": {"text_processing": 3, "batch_processing": 2, "email_simulation": 2},
        "tq_tasks_succeeded": {"text_processing": 3, "batch_processing": 1, "email_simulation": 0},
        "tq_tasks_failed": {"text_processing": 0, "batch_processing": 0, "email_simulation": 1},
        "tq_tasks_cancelled": {"text_processing": 1, "batch_processing": 1, "email_simulation": 0},
        "tq_tasks_retried": {"text_processing": 1, "batch_processing": 0, "email_simulation": 1},
    }
    for name, values in expected.items():
        assert {k: v for k, v in by_type(found[name]).items() if k in TYPES} == values, name
    # Every start in the timelines is one attempt that ended after running: each one observed once.
    starts = {kind: sum(e["status"] == "RUNNING" for t in done if t["task_type"] == kind for e in t["timeline"])
              for kind in TYPES}
    assert {k: v for k, v in by_type(found["tq_task_run_seconds"], "_count").items() if k in TYPES} == starts
    # Wait time: the first attempt of each task that started.
    firsts = {kind: sum(t["task_type"] == kind and t["attempts"] > 0 for t in done) for kind in TYPES}
    assert {k: v for k, v in by_type(found["tq_task_wait_seconds"], "_count").items() if k in TYPES} == firsts
    buckets = [s for s in found["tq_task_run_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["task_type"] == "batch_processing"]
    assert [s.labels["le"] for s in buckets][-1] == "+Inf" and buckets[-1].value == 2
    assert all(a.value <= b.value for a, b in zip(buckets, buckets[1:]))
    for kind in ("text_processing", "batch_processing"):  # one attempt each: the sum is their run times'
        ran = sum(seconds(t["completed_at"]) - seconds(t["started_at"]) for t in done
                  if t["task_type"] == kind and t["started_at"])
        assert by_type(found["tq_task_run_seconds"], "_sum")[kind] == pytest.approx(ran, abs=1e-5)
    assert {s.labels["status"]: s.value for s in found["tq_tasks"].samples} == {
        "PENDING": 0, "RUNNING": 0, "SUCCESS": 4, "FAILED": 1, "CANCELLED": 1, "RETRYING": 0}
    assert found["tq_workers_live"].samples[0].value == 1
    assert sum(s.value for s in found["tq_queue_depth"].samples) == 0

    series = (await client.get("/api/metrics/series", params={"window": "hour"})).json()
    assert sum(series["succeeded"]) == 4 and sum(series["failed"]) == 1
    assert {r["task_type"]: r["count"] for r in series["run_time"]} == starts
    assert any(p is not None for p in series["wait_p50"])
    assert series["workers_live"] == 1 and series["queue_depth_now"] == 0


async def test_series_shape(client: httpx.AsyncClient, worker: Any) -> None:
    await wait_for_status(client, (await submit(client, "text_processing"))["id"], {"SUCCESS"})
    for window, n in (("hour", 60), ("day", 1440)):
        body = (await client.get(f"/api/metrics/series?window={window}")).json()
        assert body["window"] == window and body["step"] == 60 and len(body["buckets"]) == n
        assert body["buckets"][0] == body["start"] and body["buckets"][-1] == int(body["now"] // 60) * 60
        assert all(b - a == 60 for a, b in zip(body["buckets"], body["buckets"][1:]))
        for name in ("succeeded", "failed", "wait_p50", "wait_p95", "queue_depth", "queue_depth_mean"):
            assert len(body[name]) == n, name
        assert body["succeeded"][-1] + body["succeeded"][-2] == 1
        assert [r["task_type"] for r in body["run_time"]] == ["text_processing"]
        assert any(depth is not None for depth in body["queue_depth"])  # the worker samples at start


async def test_the_day_series_stays_live_across_requests(client: httpx.AsyncClient, worker: Any) -> None:
    """The second request is served from the web process's cache of past minutes, yet a task that
    ended since shows up in it, as in the hour's series (read from Redis alone)."""
    await wait_for_status(client, (await submit(client, "text_processing"))["id"], {"SUCCESS"})
    first = (await client.get("/api/metrics/series", params={"window": "day"})).json()
    await wait_for_status(client, (await submit(client, "text_processing"))["id"], {"SUCCESS"})
    second = (await client.get("/api/metrics/series", params={"window": "day"})).json()
    hour = (await client.get("/api/metrics/series", params={"window": "hour"})).json()
    assert sum(first["succeeded"]) == 1 and sum(second["succeeded"]) == sum(hour["succeeded"]) == 2
    assert second["run_time"][0]["count"] == hour["run_time"][0]["count"] == 2
    assert sum(p is not None for p in second["wait_p50"]) == sum(p is not None for p in hour["wait_p50"]) >= 1


async def hgetalls(redis: Redis) -> int:
    return int((await redis.info("commandstats")).get("cmdstat_hgetall", {}).get("calls", 0))


async def test_the_minute_cache_keeps_minutes_that_are_over_and_reads_the_last_few(redis_url: str) -> None:
    async with open_redis(redis_url, "cache-test") as redis:
        current = int(time.time() // 60)
        now = current * 60 + 30.0
        recent = range(current - 5, current + 1)
        for minute in recent:
            await redis.hset(minute_key(minute), "succeeded", 1)
        cache = MinuteCache()
        read, _ = await cache.read(redis, "day", now)
        assert len(read) == 1440 and [int(found[b"succeeded"]) for found in read[-6:]] == [1] * 6
        # Changed behind its back (no writer does that SETTLE seconds after a minute's end): the
        # minutes that are over come from the cache, the last few from Redis.
        for minute in recent:
            await redis.hset(minute_key(minute), "succeeded", 2)
        before = await hgetalls(redis)
        again, _ = await cache.read(redis, "day", now + 1)
        assert await hgetalls(redis) - before == 3  # the current minute and the two before it
        settled = int((now + 1 - SETTLE) // 60) - 1
        assert settled == current - 3
        assert [int(found[b"succeeded"]) for found in again[-6:]] == [1, 1, 1, 2, 2, 2]
        assert [int(found[b"succeeded"]) for found in (await MinuteCache().read(redis, "day", now + 1))[0][-6:]] \
            == [2] * 6  # a process without the cache reads them all
        # Bounded: a day later, the minutes out of the window are dropped.
        await cache.read(redis, "hour", now + 86400)
        assert len(cache.minutes) <= 1440 and min(cache.minutes) >= current + 1


@pytest.mark.parametrize("window", ["week", "", "HOUR", "hour "])
async def test_series_refuses_an_unknown_window(client: httpx.AsyncClient, window: str) -> None:
    response = await client.get("/api/metrics/series", params={"window": window})
    assert response.status_code == 422 and response.json()["field"] == "window"


@pytest.fixture
async def second_web(settings: Settings) -> AsyncIterator[str]:
    async with served(settings) as address:
        yield address


async def test_every_web_process_reports_the_same_totals_and_each_ones_clients(
    client: httpx.AsyncClient, web: str, second_web: str, worker: Any
) -> None:
    async with httpx.AsyncClient(base_url=f"http://{second_web}", timeout=10) as other, \
            connect(f"ws://{web}/ws") as first_ws, connect(f"ws://{second_web}/ws") as second_a, \
            connect(f"ws://{second_web}/ws") as second_b:
        for ws in (first_ws, second_a, second_b):
            assert (await receive(ws))["type"] == "hello"
        for http in (client, other):  # submitted through both
            await wait_for_status(http, (await submit(http, "text_processing"))["id"], {"SUCCESS"})
        deadline = asyncio.get_running_loop().time() + 10
        while sorted(s.value for s in (await scrape(client))["tq_websocket_clients"].samples) != [1, 2]:
            assert asyncio.get_running_loop().time() < deadline, "web figures not written"
            await asyncio.sleep(0.1)  # each web process writes its figures every 2 s
        first, second = await scrape(client), await scrape(other)
        for name in ("tq_tasks_submitted", "tq_tasks_succeeded", "tq_task_run_seconds", "tq_task_wait_seconds"):
            assert first[name].samples == second[name].samples, name
        assert by_type(first["tq_tasks_succeeded"])["text_processing"] == 2
        clients = {s.labels["web"]: s.value for s in first["tq_websocket_clients"].samples}
        assert clients == {s.labels["web"]: s.value for s in second["tq_websocket_clients"].samples}
        assert sorted(clients.values()) == [1, 2]
        fanned = {s.labels["web"]: s.value for s in first["tq_events_fanned_out"].samples
                  if s.name == "tq_events_fanned_out_total"}
        assert set(fanned) == set(clients) and all(n >= 6 for n in fanned.values())  # 2 tasks × 3 changes each


async def test_metrics_need_the_read_token_when_tokens_are_set(redis_url: str, db_url: str, tmp_path: Path) -> None:
    settings = make_settings(redis_url, db_url, tmp_path, API_TOKEN="w" * 32, READ_TOKEN="r" * 32)
    async with served(settings) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 401
        read = await http.get("/metrics", headers={"Authorization": f"Bearer {'r' * 32}"})
        assert read.status_code == 200 and "tq_tasks_submitted_total" in read.text
        assert (await http.get("/api/metrics/series")).status_code == 401


def depth(found: dict[str, Any], name: str = "tq_queue_depth") -> dict[str, float]:
    return {s.labels["priority"]: s.value for s in found[name].samples}


async def test_queue_depth_by_priority_leaves_out_running_and_delayed_jobs(
    client: httpx.AsyncClient, start_worker: Any
) -> None:
    for priority in ("high", "high", "low"):
        await client.post("/api/tasks/submit", json={"task_type": "text_processing", "priority": priority})
    await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 3600})
    found = await scrape(client)
    assert depth(found) == {"high": 2, "default": 0, "low": 1}
    assert depth(found, "tq_queue_delayed") == {"high": 0, "default": 1, "low": 0}
    series = (await client.get("/api/metrics/series")).json()
    assert series["queue_depth_now"] == 3 and series["workers_live"] == 0

    slow = await submit(client, "batch_processing", data=["x"] * 100, delay_per_item=0.2)
    await start_worker(max_jobs=1)
    await wait_for_status(client, slow["id"], {"SUCCESS", "RUNNING"})
    while depth(found := await scrape(client))["high"]:  # the queued tasks go first, then the slow one runs
        await asyncio.sleep(0.05)
    await wait_for_status(client, slow["id"], {"RUNNING"})
    behind = await submit(client, "text_processing")
    found = await scrape(client)
    # The low task waits behind the running batch (one job at a time), whose own job is not waiting.
    assert depth(found) == {"high": 0, "default": 1, "low": 1}
    assert (await client.get("/api/metrics/series")).json()["queue_depth_now"] == 2
    await client.delete(f"/api/tasks/{slow['id']}")
    await wait_for_status(client, behind["id"], {"SUCCESS"})


async def test_a_hand_back_at_shutdown_counts_as_a_retry_with_its_run_observed(
    settings: Settings, client: httpx.AsyncClient,
) -> None:
    worker = create_worker(settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        task = await submit(client, "batch_processing", data=["x"] * 50, delay_per_item=0.2)
        await wait_for_status(client, task["id"], {"RUNNING"})
    finally:
        await worker.close()  # a stop, not a failure: the attempt is handed back
        await asyncio.gather(running, return_exceptions=True)
    handed = (await client.get(f"/api/tasks/{task['id']}")).json()
    assert handed["status"] == "RETRYING" and handed["timeline"][-1]["message"] == "worker stopped; queued again"
    found = await scrape(client)
    assert by_type(found["tq_tasks_started"])["batch_processing"] == 1
    assert by_type(found["tq_tasks_retried"])["batch_processing"] == 1
    assert by_type(found["tq_task_run_seconds"], "_count")["batch_processing"] == 1
    assert "handed back by a stopping worker" in found["tq_tasks_retried"].documentation


async def test_every_way_of_making_a_task_counts_it_once(client: httpx.AsyncClient) -> None:
    await submit(client, "text_processing")  # grouped submits (lifecycle/submit.py)
    batch = await client.post("/api/tasks/batch", json={"tasks": [{"task_type": "text_processing"}] * 3})
    assert batch.status_code == 201
    for _ in range(2):  # with an Idempotency-Key (the same pipeline, lifecycle/submit.py), repeated: one task
        keyed = await client.post("/api/tasks/submit", json={"task_type": "text_processing"},
                                  headers={"Idempotency-Key": "once"})
        assert keyed.status_code in (200, 201)
    assert (await client.post(f"/api/tasks/{keyed.json()['id']}/rerun", json={})).status_code == 201
    schedule = await client.post("/api/schedules", json={"task_type": "text_processing", "interval": 3600,
                                                          "paused": True})
    assert (await client.post(f"/api/schedules/{schedule.json()['id']}/run")).status_code == 201
    assert by_type((await scrape(client))["tq_tasks_submitted"])["text_processing"] == 1 + 3 + 1 + 1 + 1
