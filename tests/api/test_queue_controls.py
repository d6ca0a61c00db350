"""Operator controls over the API, with a real worker: a paused queue accepts tasks and no worker
takes them until it is resumed (the state live on the WebSocket and in /api/health); a task waiting
for a later start runs now on request; the list's `scheduled` view holds the tasks waiting for their
start."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from websockets.asyncio.client import connect

from app.core import keys
from app.lifecycle.pause import QueuePause
from app.worker.resilient import ResilientWorker
from tests.support.waits import passed_over, receive, submit, wait_for_status, wait_until


async def test_a_paused_queue_keeps_its_tasks_waiting_until_it_is_resumed(
        client: httpx.AsyncClient, worker: ResilientWorker, web: str) -> None:
    async with connect(f"ws://{web}/ws") as ws:
        assert (await receive(ws))["type"] == "hello"
        paused = (await client.post("/api/queue/pause")).json()
        assert paused["paused"] is True and paused["paused_at"]
        frame = await receive(ws)
        assert frame == {"type": "queue", **paused}  # every dashboard hears it
    again = (await client.post("/api/queue/pause")).json()
    assert again["paused_at"] == paused["paused_at"]  # since the first pause
    assert (await client.get("/api/queue")).json() == paused
    health = await client.get("/api/health")
    assert health.status_code == 200 and health.json()["queue"]["paused"] is True  # paused is no outage
    assert f'tq_queue_paused{{queue="{paused["queue"]}"}} 1.0' in (await client.get("/metrics")).text
    await wait_until(lambda: worker.ctx["gate"].paused, "the worker hears the pause")
    task = await submit(client, "text_processing")
    await passed_over(worker, task["id"])
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["status"] == "PENDING"

    resumed = (await client.post("/api/queue/resume")).json()
    assert resumed == {"queue": paused["queue"], "paused": False, "paused_at": None}
    done = await wait_for_status(client, task["id"], {"SUCCESS"})
    assert done["attempts"] == 1
    assert f'tq_queue_paused{{queue="{paused["queue"]}"}} 0.0' in (await client.get("/metrics")).text


async def test_a_worker_started_while_the_queue_is_paused_waits_too(
        client: httpx.AsyncClient, start_worker: Callable[..., Awaitable[ResilientWorker]]) -> None:
    await client.post("/api/queue/pause")
    task = await submit(client, "text_processing")
    worker = await start_worker()
    await passed_over(worker, task["id"])  # paused from its first look, read when it subscribed
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["status"] == "PENDING"
    await client.post("/api/queue/resume")
    await wait_for_status(client, task["id"], {"SUCCESS"})


async def test_of_a_pause_and_a_resume_racing_the_workers_and_dashboards_hear_last_what_holds(
        redis_url: str) -> None:
    """Two web processes, one pausing and one resuming at the same moment, over and over: whichever
    wins, the last control message and `queue` frame say what the key holds (a worker left paused
    by a late "pause" after the key was gone would never take a job again)."""
    clients = [Redis.from_url(redis_url) for _ in range(3)]
    pause, resume = QueuePause(clients[0], "q"), QueuePause(clients[1], "q")

    async def after(yields: int, change: Awaitable[Any]) -> None:
        for _ in range(yields):  # starts a little later: other interleavings of the two
            await asyncio.sleep(0)
        await change

    async def last_heard(pubsub: PubSub) -> dict[str, str]:
        """Each channel's last message, up to the end of the round."""
        heard: dict[str, str] = {}
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            if message["data"] == b"end of round":
                return heard
            heard[message["channel"].decode()] = message["data"].decode()
        raise AssertionError("the subscription ended")

    try:
        async with clients[2].pubsub() as pubsub:
            await pubsub.subscribe(keys.CONTROL, keys.QUEUE_STATE)
            for round_ in range(200):
                await asyncio.gather(after(round_ % 4, pause.pause()), after(round_ // 4 % 4, resume.resume()))
                await clients[0].publish(keys.CONTROL, "end of round")  # heard after every message of the round
                heard = await asyncio.wait_for(last_heard(pubsub), 10)
                since = await clients[0].get(keys.paused_key("q"))
                assert heard[keys.CONTROL] == ("pause" if since else "resume"), round_
                frame = json.loads(heard[keys.QUEUE_STATE])
                assert (frame["paused"], frame["paused_at"]) == (since is not None, since and since.decode()), round_
    finally:
        for client in clients:
            await client.aclose()


async def test_a_scheduled_task_runs_now_on_request_and_leaves_the_scheduled_view(
        client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    later = (await client.post("/api/tasks/submit", json={"task_type": "text_processing", "delay": 3600})).json()
    assert later["status"] == "PENDING" and later["next_run_at"]
    listed = (await client.get("/api/tasks", params={"scheduled": "true"})).json()
    assert [t["id"] for t in listed["tasks"]] == [later["id"]] and listed["total"] == 1
    now = await client.post(f"/api/tasks/{later['id']}/run-now")
    assert now.status_code == 200 and now.json()["next_run_at"] is None and now.json()["dispatch"] == 2
    done = await wait_for_status(client, later["id"], {"SUCCESS"})
    assert done["attempts"] == 1 and "run now" in [e.get("message") for e in done["timeline"]]
    assert (await client.get("/api/tasks", params={"scheduled": "true"})).json()["total"] == 0
    again = await client.post(f"/api/tasks/{later['id']}/run-now")
    assert again.status_code == 409 and "not waiting for a later start" in again.json()["detail"]
    bad = await client.get("/api/tasks/", params={"scheduled": "soon"})
    assert bad.status_code == 422 and bad.json()["field"] == "scheduled"
