"""Submit throughput, with no worker running (so only the submit path is measured):

- single `POST /api/tasks/submit`, CONCURRENCY requests in flight (a bare HTTP/1.1 client: see Http), against bare arq
  (`ArqRedis.enqueue_job` with our JSON serializer, on the same Redis, in the same run) one at a time
  and with the same concurrency; the ratio is taken against the concurrent one, which is what the web
  process does with many clients;
- the latency of paced (open-loop) submits at half the measured throughput, counted from the moment
  each request was due, so a stalled server cannot hide its queue;
- `POST /api/tasks/batch` with BATCH_SIZE tasks per request.
"""

import asyncio
import json
import time
import uuid

from app.core.connections import redis_client
from bench.rawhttp import Http
from bench.report import Options, Row, percentile
from bench.stack import running_stack

CONCURRENCY = 32
BATCH_SIZE = 1000
BATCH_CONCURRENCY = 2  # one request being parsed while the other waits on the database
BODY = {"task_type": "text_processing", "parameters": {"text": "The cat sat on the mat."}}
# Nothing but the submit path: no rate limit, no queue cap in the way (no worker drains the queue).
ENV = {"SUBMIT_RATE": "1000000000", "SUBMIT_BURST": "1000000000", "MAX_QUEUED": "1000000000"}
GOAL_RATIO = 0.5
GOAL_BATCH = 10_000


async def _arq_enqueue(redis_url: str, jobs: int, concurrency: int) -> float:
    """Jobs per second of bare `enqueue_job`, shaped as the web's (JSON, own job id)."""
    redis = redis_client(redis_url, f"bench:arq:{uuid.uuid4().hex[:6]}")
    per_task = jobs // concurrency

    async def enqueue(count: int) -> None:
        for _ in range(count):
            task_id = uuid.uuid4().hex
            await redis.enqueue_job("run_task", task_id, 1, _job_id=f"{task_id}:1")

    try:
        await enqueue(50)  # connect, warm up
        started = time.perf_counter()
        await asyncio.gather(*(enqueue(per_task) for _ in range(concurrency)))
        return per_task * concurrency / (time.perf_counter() - started)
    finally:
        await redis.aclose(close_connection_pool=True)


SUBMIT = json.dumps(BODY).encode()


async def _submit(http: Http) -> None:
    status, body = await http.post("/api/tasks/submit", SUBMIT)
    if status != 201:
        raise RuntimeError(f"submit answered {status}: {body[:200]!r}")


async def _closed_loop(url: str, submits: int, concurrency: int) -> float:
    """Tasks per second with `concurrency` submits always in flight (one connection each)."""
    per_client = submits // concurrency
    connections = [await Http.open(url) for _ in range(concurrency)]

    async def loop(http: Http, count: int) -> None:
        for _ in range(count):
            await _submit(http)

    try:
        await asyncio.gather(*(loop(http, 10) for http in connections))  # code paths warm
        started = time.perf_counter()
        await asyncio.gather(*(loop(http, per_client) for http in connections))
        return per_client * concurrency / (time.perf_counter() - started)
    finally:
        for http in connections:
            http.close()


async def _paced(url: str, rate: float, seconds: float) -> list[float]:
    """Latencies (ms) of submits sent at `rate` per second, each measured from when it was due (a
    request finding no idle connection opens one, as a new client would)."""
    total = max(1, round(rate * seconds))
    latencies: list[float] = []
    idle = [await Http.open(url) for _ in range(CONCURRENCY)]
    opened = list(idle)
    for http in idle:
        await _submit(http)

    async def one(due: float) -> None:
        # uvicorn closes a connection idle for 5 s: one idle for 2 s is not reused
        while idle and time.perf_counter() - idle[-1].used > 2.0:
            idle.pop().close()
        http = idle.pop() if idle else await Http.open(url)
        opened.append(http)
        await _submit(http)
        latencies.append((time.perf_counter() - due) * 1000)
        idle.append(http)

    try:
        sent: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            if (ahead := due - time.perf_counter()) > 0:
                await asyncio.sleep(ahead)
            sent.append(asyncio.create_task(one(due)))
        await asyncio.gather(*sent)
    finally:
        for http in set(opened):
            http.close()
    return latencies


async def _batches(url: str, tasks: int, size: int, concurrency: int) -> float:
    body = json.dumps({"tasks": [BODY] * size}).encode()
    per_client = max(1, tasks // size // concurrency)
    connections = [await Http.open(url) for _ in range(concurrency)]

    async def loop(http: Http, count: int) -> None:
        for _ in range(count):
            status, answer = await http.post("/api/tasks/batch", body)
            if status != 201:
                raise RuntimeError(f"batch answered {status}: {answer[:200]!r}")

    try:
        await loop(connections[0], 1)
        started = time.perf_counter()
        await asyncio.gather(*(loop(http, per_client) for http in connections))
        return per_client * concurrency * size / (time.perf_counter() - started)
    finally:
        for http in connections:
            http.close()


def _scenario(options: Options, database: str, database_url: str | None) -> list[Row]:
    submits = options.size(20_000) // CONCURRENCY * CONCURRENCY or CONCURRENCY
    with running_stack(ENV, database_url=database_url, workers=0) as stack:
        sequential = asyncio.run(_arq_enqueue(stack.redis_url, options.size(20_000), 1))
        concurrent = asyncio.run(_arq_enqueue(stack.redis_url, submits, CONCURRENCY))
        single = asyncio.run(_closed_loop(stack.url, submits, CONCURRENCY))
        half = single / 2
        latencies = asyncio.run(_paced(stack.url, half, max(2.0, 10 * options.scale)))
        batch = asyncio.run(_batches(stack.url, options.size(50_000), BATCH_SIZE, BATCH_CONCURRENCY))
    ratio = single / concurrent
    return [
        Row(f"submit, single, {database}, {CONCURRENCY} in flight", f"{single:,.0f} tasks/s",
            f"≥ {GOAL_RATIO}× bare arq", ratio >= GOAL_RATIO,
            f"bare arq enqueue_job, {CONCURRENCY} in flight: {concurrent:,.0f} jobs/s "
            f"(one at a time: {sequential:,.0f} jobs/s)", ratio),
        Row(f"submit, single, {database}, paced at half that ({half:,.0f}/s, {len(latencies):,} submits)",
            f"p99 {percentile(latencies, 99):.1f} ms (p50 {percentile(latencies, 50):.1f} ms, "
            f"max {max(latencies):.1f} ms)", "p99 reported"),
        Row(f"submit, batch of {BATCH_SIZE:,}, {database}, {BATCH_CONCURRENCY} in flight", f"{batch:,.0f} tasks/s",
            f"≥ {GOAL_BATCH:,} tasks/s", batch >= GOAL_BATCH),
    ]


def run(options: Options) -> list[Row]:
    rows = _scenario(options, "SQLite", None)
    if options.postgres_url:
        rows += _scenario(options, "PostgreSQL", options.postgres_url)
    return rows
