"""Calls to the real API and waits on real state (never on fixed sleeps alone)."""

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from app.core import keys
from app.worker.resilient import ResilientWorker


async def wait_for_status(client: httpx.AsyncClient, task_id: str, statuses: set[str],
                          timeout: float = 15.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        task = (await client.get(f"/api/tasks/{task_id}")).json()
        if task["status"] in statuses:
            return task  # type: ignore[no-any-return]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} stuck in {task['status']}, wanted {set(statuses)}: "
                                 f"dispatch {task['dispatch']}, timeline {task['timeline']}")
        await asyncio.sleep(0.02)


async def submit(client: httpx.AsyncClient, task_type: str, **parameters: Any) -> dict[str, Any]:
    response = await client.post("/api/tasks/submit", json={"task_type": task_type, "parameters": parameters})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def receive(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))  # type: ignore[no-any-return]


async def receive_until(ws: ClientConnection, done: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Frames until `done(frame)` is true (inclusive)."""
    frames = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        frame = await receive(ws, max(0.01, deadline - asyncio.get_running_loop().time()))
        frames.append(frame)
        if done(frame):
            return frames


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    """Until `condition()` holds (it may be a coroutine function); AssertionError naming `what` after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.02)


async def wait_for_progress(client: httpx.AsyncClient, task_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """The task once it is RUNNING and has reported some progress: inside its work."""
    found: dict[str, Any] = {}

    async def working() -> bool:
        found.update((await client.get(f"/api/tasks/{task_id}")).json())
        return found["status"] == "RUNNING" and found["progress"] > 0

    await wait_until(working, f"task {task_id} running with progress", timeout)
    return found


async def passed_over(worker: ResilientWorker, task_id: str) -> None:
    """Until the (in-process) worker has looked at its queue time and again while the task's first job
    waited there, and left it: what a worker of a paused queue does."""
    job = keys.job_id(task_id, 1)
    looks = 0
    looking = worker._look

    async def spied() -> None:
        nonlocal looks
        queued = await worker.pool.zscore(worker.queue_name, job) is not None
        await looking()
        looks += queued and job not in worker.tasks

    worker._look = spied  # type: ignore[method-assign]
    try:
        await wait_until(lambda: looks >= 5, "the worker looking past the waiting job")
    finally:
        worker._look = looking  # type: ignore[method-assign]
