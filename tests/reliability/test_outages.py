"""Redis stopped mid-run, the pub/sub connection killed, two processes on one SQLite file, the web
restarted: nothing lost, nothing stuck, every live view converges on the database."""

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.core.status import FINAL
from launcher.redis_server import RedisServer, free_port
from tests.support.processes import process_env, workers
from tests.support.servers import make_settings, serve
from tests.support.waits import receive, submit, wait_for_status

CHAOS_FULL = os.environ.get("CHAOS_FULL") == "1"  # the full-size chaos runs; CI runs them reduced
SUSTAINED_GAP = 1 / 45  # seconds between sustained submits at least


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every scenario here runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    return any_db_url


class LiveView:
    """A dashboard-like client: follows /ws, resumes with since after every close, keeps the
    newest state per task."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.tasks: dict[str, dict] = {}
        self.since = 0
        self.closes: list[int | None] = []
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                async with connect(f"ws://{self.address}/ws?since={self.since}") as ws:
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame["type"] == "task" and frame["seq"] > self.tasks.get(frame["task"]["id"], {}).get("seq", 0):
                            self.tasks[frame["task"]["id"]] = frame["task"]
                            self.since = max(self.since, frame["seq"])
            except ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else None)
            except OSError:
                pass
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def converged(views: list[LiveView], client: httpx.AsyncClient, ids: list[str], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stored = {i: (await client.get(f"/api/tasks/{i}")).json() for i in ids}
        if all(all(v.tasks.get(i, {}).get("seq") == stored[i]["seq"] for i in ids) for v in views):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("live views did not converge on the database")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(150)
async def test_redis_stopped_for_five_seconds_mid_run(tmp_path: Path, db_url: str) -> None:
    redis = RedisServer(free_port(), tmp_path / "redis", appendonly=True)
    redis.start()
    settings = make_settings(redis.url, db_url, tmp_path / "data")
    server, serving, address = await serve(settings)
    env = process_env(redis.url, db_url, tmp_path / "data", WORKER_CONCURRENCY="5")
    views: list[LiveView] = []
    try:
        with workers(env, tmp_path) as pool:
            pool.start()
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
                views = [LiveView(address), LiveView(address)]
                tasks = [await submit(client, "batch_processing", data=list(range(30)), delay_per_item=0.1)
                         for _ in range(10)]
                await wait_for_status(client, tasks[0]["id"], {"RUNNING"})
                redis.stop()
                statuses = []
                for _ in range(25):  # ~5 s of traffic while Redis is down
                    statuses.append((await client.get("/api/tasks/")).status_code)
                    statuses.append((await client.get(f"/api/tasks/{tasks[0]['id']}")).status_code)
                    statuses.append((await client.get("/api/health")).status_code)
                    refused = await client.post("/api/tasks/submit", json={"task_type": "text_processing"})
                    statuses.append(refused.status_code)
                    await asyncio.sleep(0.2)
                assert set(statuses) <= {200, 503} and 503 in statuses and statuses.count(200) >= 50
                assert refused.headers.get("retry-after")
                redis.start()
                finals = [await wait_for_status(client, t["id"], FINAL, timeout=60) for t in tasks]
                assert [t["status"] for t in finals] == ["SUCCESS"] * 10
                assert (await client.get("/api/tasks/")).json()["total"] == 10  # the refused submits left nothing
                await converged(views, client, [t["id"] for t in tasks])
            assert all(proc.poll() is None for proc in pool.procs)  # the worker lived through it
    finally:
        for view in views:
            await view.stop()
        server.should_exit = True
        await serving
        redis.stop()


async def test_killed_pubsub_connections_are_resubscribed_and_clients_converge(
    web: str, client: httpx.AsyncClient, worker, redis_url: str
) -> None:
    view = LiveView(web)
    try:
        tasks = [await submit(client, "batch_processing", data=list(range(10)), delay_per_item=0.05)
                 for _ in range(5)]
        await wait_for_status(client, tasks[0]["id"], {"RUNNING"})
        admin = aioredis.Redis.from_url(redis_url)
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await admin.aclose()
        assert killed >= 2  # the web's event subscription and the worker's control subscription
        more = [await submit(client, "text_processing") for _ in range(3)]
        for task in tasks + more:
            await wait_for_status(client, task["id"], {"SUCCESS"})
        await converged([view], client, [t["id"] for t in tasks + more])
        assert 1012 in view.closes  # told to resume once the web had resubscribed
        cancel_me = await submit(client, "batch_processing", data=list(range(100)), delay_per_item=0.05)
        await wait_for_status(client, cancel_me["id"], {"RUNNING"})
        assert (await client.delete(f"/api/tasks/{cancel_me['id']}")).json()["status"] == "CANCELLED"
    finally:
        await view.stop()


async def test_web_shutdown_closes_sockets_with_1012(settings) -> None:
    server, serving, address = await serve(settings)
    async with connect(f"ws://{address}/ws") as ws:
        await receive(ws)
        server.should_exit = True
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    await serving
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012


@pytest.mark.timeout(420)
async def test_two_worker_processes_on_one_database_never_hit_a_lock(
    client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path
) -> None:
    """Sustained submits and progress from two processes writing one database file (a minute at
    full size, 20 s reduced); on PostgreSQL the same load must give the same result."""
    env = process_env(redis_url, db_url, tmp_path / "data", PROGRESS_INTERVAL="0.02", WORKER_CONCURRENCY="10")
    with workers(env, tmp_path) as pool:
        pool.start()
        pool.start()
        tasks = []
        loop = asyncio.get_running_loop()
        end = loop.time() + (60 if CHAOS_FULL else 20)
        # at least this long and this many: a busy machine submits more slowly, and then for longer;
        # a quick one is held just under the web's per-client submit limit (SUBMIT_RATE, 50/s)
        while loop.time() < end or len(tasks) < 150:
            sent = loop.time()
            tasks.append(await submit(client, "batch_processing", data=list(range(40)), delay_per_item=0.01))
            await asyncio.sleep(sent + SUSTAINED_GAP - loop.time())
        drain_started = loop.time()
        # the backlog drains at the database's pace: the deadline covers all of it, not each task
        finals = [await wait_for_status(client, t["id"], FINAL, timeout=max(5.0, drain_started + 240 - loop.time()))
                  for t in tasks]
    logs = "".join(path.read_text(errors="replace") for path in tmp_path.glob("worker-*.log"))
    assert "database is locked" not in logs
    assert [t["status"] for t in finals] == ["SUCCESS"] * len(tasks)
    assert all(t["progress"] == 100 for t in finals)
