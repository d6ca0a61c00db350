"""End-to-end: tiny tasks submitted over REST (one request each, or the batch endpoint) while a worker
runs, until every SUCCESS is stored and has reached a WebSocket client; against the bare engine's
drain of the same number of no-op jobs (bench/bare_arq.py), measured in the same run.

The bare engine's rate is its pure drain (first job started → last finished, all enqueued before
its worker starts); ours counts from the first submit request to the last SUCCESS event received,
so it carries the submits, the database writes and the live events on top. Its WebSocket client,
closed as too slow (1013) when its own JSON decoding falls behind, resumes with `?since=` as any client
does (it stopped counting there before: a 600 s timeout)."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from bench.bare_arq import QUEUE, queued_noops, results
from bench.rawhttp import Http
from bench.report import Options, Row
from bench.stack import ROOT, running_stack
from launcher.redis_server import RedisServer, free_port

TASKS = 5_000
CONCURRENCY = 32  # REST submits in flight, one connection each
BATCH = 500  # tasks per batch request
TINY = {"task_type": "batch_processing", "parameters": {"data": [1], "delay_per_item": 0}}
# Per-client submit limits and the queue cap are for strangers, not for the benchmark's one client.
ENV = {"SUBMIT_RATE": "1000000", "SUBMIT_BURST": "1000000", "MAX_QUEUED": "1000000"}
GOAL = 0.8


async def _bare_drain(redis_url: str, count: int) -> float:
    """Jobs per second: no-op jobs enqueued first, then drained by a fresh bare arq worker."""
    async with queued_noops(redis_url, count) as (pool, ids):
        worker = subprocess.Popen([sys.executable, "-m", "bench.bare_arq"], cwd=ROOT,
                                  env={**os.environ, "REDIS_URL": redis_url},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while await pool.exists(*(f"arq:result:{job_id}" for job_id in ids[-100:])) < min(100, len(ids)) \
                    or await pool.zcard(QUEUE):
                assert time.monotonic() < deadline and worker.poll() is None, "the bare worker did not drain"
                await asyncio.sleep(0.05)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        done = await results(pool, ids, count)
        return count / ((max(r["ft"] for r in done) - min(r["st"] for r in done)) / 1000)


def bare_drain(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(free_port(), Path(tmp), appendonly=False) as redis:
        return asyncio.run(_bare_drain(redis.url, count))


async def _submit_rest(url: str, count: int) -> None:
    remaining = iter(range(count))
    body = json.dumps(TINY).encode()

    async def submitter() -> None:
        http = await Http.open(url)
        try:
            for _ in remaining:
                status, answer = await http.post("/api/tasks/submit", body)
                assert status == 201, answer
        finally:
            http.close()

    await asyncio.gather(*(submitter() for _ in range(CONCURRENCY)))


async def _submit_batch(http: httpx.AsyncClient, count: int) -> None:
    for start in range(0, count, BATCH):
        response = await http.post("/api/tasks/batch", json={"tasks": [TINY] * min(BATCH, count - start)})
        assert response.status_code == 201, response.text


async def _end_to_end(url: str, count: int, batch: bool) -> float:
    """Tasks per second from the first submit to the last SUCCESS received over /ws."""
    done, listening = asyncio.Event(), asyncio.Event()
    succeeded: set[str] = set()
    last = 0.0
    seen = 0  # the last seq received: a client closed as too slow (1013) resumes after it, as the API says
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY)) as http:
        async def receive() -> None:
            nonlocal last, seen
            while True:
                since = f"?since={seen}" if seen else ""
                async with websockets.connect(url.replace("http", "ws") + "/ws" + since, max_size=None) as socket:
                    listening.set()
                    try:
                        async for frame in socket:
                            message = json.loads(frame)
                            if message.get("type") != "task":
                                continue
                            seen = max(seen, message["seq"])
                            if message["task"]["status"] == "SUCCESS":
                                succeeded.add(message["task"]["id"])
                                last = time.perf_counter()
                                if len(succeeded) == count:
                                    done.set()
                                    return
                    except websockets.ConnectionClosed as closed:
                        if closed.rcvd is None or closed.rcvd.code != 1013:
                            raise

        receiver = asyncio.create_task(receive())
        await asyncio.wait_for(listening.wait(), 30)  # before the first submit
        started = time.perf_counter()
        await (_submit_batch(http, count) if batch else _submit_rest(url, count))
        try:
            await asyncio.wait_for(done.wait(), 600)
        finally:
            receiver.cancel()
        counts = (await http.get("/api/stats")).json()["counts"]
        assert counts["SUCCESS"] == count, counts  # stored, not only published
    return count / (last - started)


def end_to_end(options: Options, count: int, *, batch: bool = False, workers: int = 1,
               database_url: str | None = None) -> float | None:
    with running_stack(ENV, database_url=database_url, workers=workers) as stack:
        if batch and httpx.post(f"{stack.url}/api/tasks/batch", json={"tasks": []}).status_code in (404, 405):
            return None
        return asyncio.run(_end_to_end(stack.url, count, batch))


def run(options: Options) -> list[Row]:
    count = options.size(TASKS)
    bare = bare_drain(count)
    baseline = f"bare arq drain {bare:,.0f} jobs/s"
    rows = []
    variants: list[tuple[str, dict[str, object]]] = [
        ("SQLite, 1 worker, REST submits", {}),
        ("SQLite, 1 worker, batch submits", {"batch": True}),
        ("SQLite, 2 workers, REST submits", {"workers": 2}),
    ]
    if options.postgres_url:
        variants.append(("PostgreSQL, 1 worker, REST submits", {"database_url": options.postgres_url}))
        variants.append(("PostgreSQL, 2 workers, REST submits", {"database_url": options.postgres_url, "workers": 2}))
    for name, kwargs in variants:
        rate = end_to_end(options, count, **kwargs)  # type: ignore[arg-type]
        if rate is None:
            rows.append(Row(f"end-to-end {count:,} tasks, {name}", "no batch endpoint", baseline=baseline))
            continue
        primary = not kwargs  # the goal is stated for SQLite, one worker; the rest are reported
        rows.append(Row(f"end-to-end {count:,} tasks, {name}", f"{rate:,.0f} tasks/s",
                        goal=f"≥ {GOAL}× baseline" if primary else "", met=rate / bare >= GOAL if primary else None,
                        baseline=baseline, ratio=rate / bare))
    return rows
