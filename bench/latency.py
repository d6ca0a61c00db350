"""What a person waits for: a submitted task picked up (submit → RUNNING seen on /ws) on an idle
system, and a running task stopped (DELETE → CANCELLED seen on /ws). One web process, one worker."""

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import websockets

from bench.report import Options, Row, percentile
from bench.stack import running_stack

SAMPLES = 100
PICKUP_GOAL_MS = 20.0
CANCEL_GOAL_MS = 100.0
TINY = {"task_type": "batch_processing", "parameters": {"data": [1], "delay_per_item": 0}}
SLOW = {"task_type": "batch_processing", "parameters": {"data": list(range(100)), "delay_per_item": 0.1}}


class Watcher:
    """One WebSocket client: when each task was first seen in each status."""

    def __init__(self, socket: websockets.ClientConnection) -> None:
        self.socket = socket
        self.seen: dict[tuple[str, str], float] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        async for frame in self.socket:
            message = json.loads(frame)
            if message.get("type") == "task":
                self.seen.setdefault((message["task"]["id"], message["task"]["status"]), time.perf_counter())
                self.changed.set()

    async def wait(self, task_id: str, status: str, timeout: float = 30) -> float:
        deadline = time.perf_counter() + timeout
        while (task_id, status) not in self.seen:
            assert time.perf_counter() < deadline, f"{task_id} never {status}"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1)
            except TimeoutError:
                pass
        return self.seen[(task_id, status)]


@asynccontextmanager
async def watching(url: str) -> AsyncIterator[tuple[Watcher, httpx.AsyncClient]]:
    """A client of the REST API, and a watcher of /ws noting when each task reaches each status."""
    async with websockets.connect(url.replace("http", "ws") + "/ws") as socket, \
            httpx.AsyncClient(base_url=url, timeout=30) as http:
        watcher = Watcher(socket)
        reading = asyncio.create_task(watcher.run())
        try:
            yield watcher, http
        finally:
            reading.cancel()


async def measure_pickups(url: str, samples: int) -> list[float]:
    """Submit → RUNNING seen on /ws (ms) of `samples` tasks, each submitted to an idle system."""
    async with watching(url) as (watcher, http):
        return await _pickups(watcher, http, samples)


async def _pickups(watcher: Watcher, http: httpx.AsyncClient, samples: int) -> list[float]:
    pickups = []
    for _ in range(samples):
        await asyncio.sleep(random.uniform(0.05, 0.15))  # idle, at a random phase of the worker's poll
        sent = time.perf_counter()
        task = (await http.post("/api/tasks/submit", json=TINY)).json()
        pickups.append((await watcher.wait(task["id"], "RUNNING") - sent) * 1000)
        await watcher.wait(task["id"], "SUCCESS")
    return pickups


async def _measure(url: str, samples: int) -> tuple[list[float], list[float]]:
    cancels = []
    async with watching(url) as (watcher, http):
        pickups = await _pickups(watcher, http, samples)
        for _ in range(max(1, samples // 2)):
            task = (await http.post("/api/tasks/submit", json=SLOW)).json()
            await watcher.wait(task["id"], "RUNNING")
            await asyncio.sleep(random.uniform(0.2, 0.4))  # inside its work, between two steps
            sent = time.perf_counter()
            answer = await http.delete(f"/api/tasks/{task['id']}")
            assert answer.status_code == 200, answer.text
            cancels.append((await watcher.wait(task["id"], "CANCELLED") - sent) * 1000)
    return pickups, cancels


def latency_row(scenario: str, values: list[float], goal: float) -> Row:
    p95 = percentile(values, 95)
    return Row(scenario, f"p95 {p95:.1f} ms (p50 {percentile(values, 50):.1f}, max {max(values):.1f}; "
               f"{len(values)} samples)", goal=f"p95 ≤ {goal:g} ms", met=p95 <= goal)


def run(options: Options) -> list[Row]:
    with running_stack() as stack:
        pickups, cancels = asyncio.run(_measure(stack.url, options.size(SAMPLES)))
    return [latency_row("pickup: idle system, submit → RUNNING on /ws", pickups, PICKUP_GOAL_MS),
            latency_row("cancel: running task, DELETE → CANCELLED on /ws", cancels, CANCEL_GOAL_MS)]
