"""The workers view: `GET /api/workers`, heartbeats over `/ws`, and the dashboard's panel, with real
worker processes (one is SIGKILLed and must show as lost within the heartbeat TTL)."""

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page
from websockets.asyncio.client import connect

from app.core.connections import open_redis
from app.lifecycle.changes import Changes
from app.settings import Settings
from app.store.stores import open_stores
from app.web.live.client_queue import Closed
from app.web.live.hub import EventHub
from app.worker.heartbeat import Heartbeat
from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON
from tests.support.processes import process_env, workers
from tests.support.servers import make_settings
from tests.support.waits import receive, receive_until, submit, wait_for_status

INTERVAL, TTL = "0.3", "1.5"  # what tests.processes gives the worker processes
LOST_MARGIN = 3.0  # seconds past the TTL: a poll interval, a slow machine, two processes starting
FAILING = {"data": ["a", None], "fail_fast": True, "delay_per_item": 0}  # FAILED at once, no retry
SLOW = {"data": list(range(100)), "delay_per_item": 0.1}  # ~10 s: still running when looked at

Workers = dict[int, dict[str, Any]]  # by pid

# How far the workers table runs past its panel (0 or less: it fits), and each row's task type names
# with the number of lines each is drawn on (1: not broken inside the name).
WORKERS_TABLE = """() => {
  const wrap = document.querySelector('#workers .table-wrap');
  return {past: wrap.querySelector('table').scrollWidth - wrap.clientWidth,
    types: [...document.querySelectorAll('#worker-rows td.c-types')].map((td) => [...td.querySelectorAll('.type-name')]
      .map((name) => [name.textContent, name.getClientRects().length]))};
}"""


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    """The web reports the heartbeat settings the workers run with (one environment in production)."""
    return make_settings(redis_url, db_url, tmp_path / "data", HEARTBEAT_INTERVAL=INTERVAL, HEARTBEAT_TTL=TTL)


async def listed(client: httpx.AsyncClient) -> tuple[Workers, dict[str, Any]]:
    answer = await client.get("/api/workers")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return {worker["pid"]: worker for worker in body["workers"]}, body


async def wait_workers(client: httpx.AsyncClient, done: Callable[[Workers], bool], timeout: float = 15) -> Workers:
    deadline = time.monotonic() + timeout
    while True:
        found, _ = await listed(client)
        if done(found):
            return found
        assert time.monotonic() < deadline, f"workers never got there: {found}"
        await asyncio.sleep(0.05)


async def test_workers_are_listed_with_their_work_and_a_killed_one_is_lost_within_the_ttl(
    client: httpx.AsyncClient, redis_url: str, db_url: str, tmp_path: Path,
) -> None:
    with workers(process_env(redis_url, db_url, tmp_path / "data"), tmp_path) as pool:
        procs = [pool.start(), pool.start()]
        pids = {proc.pid for proc in procs}
        found = await wait_workers(client, lambda w: all(w.get(pid, {}).get("state") == "live" for pid in pids))
        _, body = await listed(client)
        assert (body["heartbeat_interval"], body["heartbeat_ttl"]) == (float(INTERVAL), float(TTL))
        for pid in pids:
            worker = found[pid]
            assert worker["host"] == socket.gethostname() and worker["queues"] == ["tq:queue"]
            assert worker["concurrency"] == 10 and worker["id"].startswith(f"{socket.gethostname()}:{pid}:")
            assert worker["started"] <= worker["last_heartbeat"] <= body["now"]
            assert body["now"] - worker["last_heartbeat"] < float(TTL)
            assert worker["stopped"] is None

        tasks = [await submit(client, "text_processing", text=f"words {n}") for n in range(6)]
        tasks += [await submit(client, "batch_processing", **FAILING) for _ in range(3)]
        ended = [await wait_for_status(client, t["id"], {"SUCCESS", "FAILED"}) for t in tasks]
        assert sorted(t["status"] for t in ended) == ["FAILED"] * 3 + ["SUCCESS"] * 6
        # Each worker counts what it ran itself (the task's `worker`), carried by its next beat.
        expected = {pid: (sum(t["status"] == "SUCCESS" and t["worker"] == found[pid]["id"] for t in ended),
                          sum(t["status"] == "FAILED" and t["worker"] == found[pid]["id"] for t in ended))
                    for pid in pids}
        found = await wait_workers(client, lambda w: all(
            (w[pid]["completed"], w[pid]["failed"]) == expected[pid] for pid in pids))
        assert sum(c for c, _ in expected.values()) == 6 and sum(f for _, f in expected.values()) == 3

        slow = await submit(client, "batch_processing", **SLOW)
        running = await wait_for_status(client, slow["id"], {"RUNNING"})
        victim = next(proc for proc in procs if found[proc.pid]["id"] == running["worker"])
        survivor = next(proc for proc in procs if proc is not victim)
        await wait_workers(client, lambda w: w[victim.pid]["running"] == [slow["id"]])
        assert found[survivor.pid]["running"] == []

        pool.kill(victim)
        killed_at = time.monotonic()
        found = await wait_workers(client, lambda w: w[victim.pid]["state"] == "lost")
        lost_after = time.monotonic() - killed_at
        assert lost_after < float(TTL) + LOST_MARGIN, f"shown lost only {lost_after:.1f} s after the kill"
        assert found[survivor.pid]["state"] == "live"
        # A lost worker is still described: where it ran and what it had done.
        assert found[victim.pid]["host"] == socket.gethostname()
        assert (found[victim.pid]["completed"], found[victim.pid]["failed"]) == expected[victim.pid]
        assert (await client.get("/api/health")).json()["workers"]["live"] == 1

        assert pool.terminate(survivor) == 0
        found = await wait_workers(client, lambda w: w[survivor.pid]["state"] == "stopped")
        assert found[survivor.pid]["stopped"] is not None and found[survivor.pid]["running"] == []
        assert (await client.get("/api/health")).json()["workers"]["live"] == 0
    print(f"\nkilled worker shown lost after {lost_after:.2f} s (HEARTBEAT_TTL {TTL} s)")


async def test_heartbeats_arrive_over_the_websocket_for_clients_that_follow_them(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker,
) -> None:
    worker_id = worker.ctx["runner"].worker_id
    async with connect(f"ws://{web}/ws") as following, connect(f"ws://{web}/ws") as other:
        assert (await receive(following))["type"] == "hello"
        assert (await receive(other))["type"] == "hello"
        await following.send(json.dumps({"type": "workers"}))
        beat = (await receive_until(following, lambda f: f["type"] == "worker"))[-1]
        assert beat["ttl"] == float(TTL)
        assert beat["worker"]["id"] == worker_id and beat["worker"]["state"] == "live"
        assert beat["worker"]["pid"] > 0 and beat["worker"]["running"] == [] and beat["worker"]["completed"] == 0

        task = await submit(client, "text_processing", text="one two three")
        await wait_for_status(client, task["id"], {"SUCCESS"})
        await receive_until(following, lambda f: f["type"] == "worker" and f["worker"]["completed"] == 1)

        # A client that did not ask gets task frames only: several beats went by, the pong comes first.
        await other.send(json.dumps({"type": "ping"}))
        before_pong = [f["type"] for f in await receive_until(other, lambda f: f["type"] == "pong")][:-1]
        assert before_pong and set(before_pong) == {"task"}, before_pong

        await following.send(json.dumps({"type": "workers", "follow": False}))
        await following.send(json.dumps({"type": "ping"}))
        await receive_until(following, lambda f: f["type"] == "pong")
        # A witness that follows gets the next beats; the hub puts each beat on every follower's queue
        # at once, so once the witness has two, a client still following would have them too.
        async with connect(f"ws://{web}/ws") as witness:
            assert (await receive(witness))["type"] == "hello"
            await witness.send(json.dumps({"type": "workers"}))
            beats = 0
            while beats < 2:
                beats += (await receive(witness))["type"] == "worker"
        await following.send(json.dumps({"type": "ping"}))
        assert (await receive(following))["type"] == "pong"

        await following.send(json.dumps({"type": "workers", "follow": "yes"}))
        assert (await receive(following))["type"] == "error"


async def test_a_client_behind_on_heartbeats_keeps_each_workers_latest_and_is_not_closed(settings: Settings) -> None:
    """Beats of four workers reach the hub (real Redis, real heartbeats) faster than this client
    takes them: its queue of five holds each worker's latest beat, not a hundred frames."""
    async with open_stores(str(settings.database_url)) as stores, \
            open_redis(str(settings.redis_url), settings.queue_name) as redis:
        hub = EventHub(redis, stores.tasks, Changes(stores, redis).sync_seq, gap_timeout=1.0, queue_size=5,
                       queue_bytes=1 << 20)
        async with hub:
            with hub.subscribe() as (queue, _):
                hub.follow_workers(queue, True)
                beats = [Heartbeat(redis, f"w{n}", {"id": f"w{n}"}, interval=1.0, ttl=5.0, running=list)
                         for n in range(4)]
                for _ in range(25):
                    for heartbeat in beats:
                        await heartbeat.beat()
                for heartbeat in beats:
                    await heartbeat.remove()
                states: dict[str, str] = {}
                first = True
                while len(states) < 4 or set(states.values()) != {"stopped"}:
                    try:
                        frames = [json.loads(frame) for frame in await asyncio.wait_for(queue.take(), 5)]
                    except Closed as closed:
                        pytest.fail(f"the client was closed: {closed.code} {closed.reason}")
                    ids = [frame["worker"]["id"] for frame in frames]
                    assert len(ids) == len(set(ids)), ids  # one frame per worker at most
                    if first:  # most beats had arrived while nothing was taken
                        assert len(ids) >= 2, ids
                        first = False
                    states |= {frame["worker"]["id"]: frame["worker"]["state"] for frame in frames}


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
async def test_the_dashboard_panel_shows_workers_live_and_marks_a_killed_one_lost(
    web: str, client: httpx.AsyncClient, page: Page, redis_url: str, db_url: str, tmp_path: Path,
) -> None:
    with workers(process_env(redis_url, db_url, tmp_path / "data"), tmp_path) as pool:
        victim, survivor = pool.start(), pool.start()
        found = await wait_workers(client, lambda w: {victim.pid, survivor.pid} <= w.keys())
        await page.goto(f"http://{web}/")
        await page.wait_for_selector('#connection[data-connection="live"]')
        for proc in (victim, survivor):
            row = page.locator(f'#worker-rows tr[data-pid="{proc.pid}"][data-state="live"]')
            await row.wait_for()
            assert socket.gethostname() in await row.text_content()
        assert await page.locator("#workers-summary").text_content() == "2 live"
        # every cell holds its text (the list of task types wraps instead of running over its neighbours)
        spilled = await page.evaluate("""() => [...document.querySelectorAll('#worker-rows td')]
            .filter((td) => td.scrollWidth > td.clientWidth + 1).map((td) => td.className)""")
        assert spilled == []

        # Counts and running tasks arrive with the beats, without a reload.
        task = await submit(client, "text_processing", text="counted live")
        ended = await wait_for_status(client, task["id"], {"SUCCESS"})
        ran = next(proc for proc in (victim, survivor) if f":{proc.pid}:" in ended["worker"])
        await page.wait_for_function(
            "pid => document.querySelector(`#worker-rows tr[data-pid='${pid}'] .c-completed`)?.textContent === '1'",
            arg=ran.pid)

        pool.kill(victim)
        killed_at = time.monotonic()
        await page.locator(f'#worker-rows tr[data-pid="{victim.pid}"][data-state="lost"]').wait_for()
        lost_after = time.monotonic() - killed_at
        assert lost_after < float(TTL) + LOST_MARGIN, f"panel showed lost only {lost_after:.1f} s after the kill"
        assert await page.locator(f'#worker-rows tr[data-pid="{survivor.pid}"]').get_attribute("data-state") == "live"
        assert await page.locator(f'#worker-rows tr[data-pid="{victim.pid}"] .badge').text_content() == "✕Lost"
        assert await page.locator("#workers-summary").text_content() == "1 live, 1 lost"

        # A reload agrees: the server says lost too.
        await page.reload()
        await page.locator(f'#worker-rows tr[data-pid="{victim.pid}"][data-state="lost"]').wait_for()

        # Busy (four tasks: three links and "+1"), the table still fits its panel beside the form (1400 px)
        # and alone (1000 px), wrapping between whole names only: both list the six built-in types.
        slow = [await submit(client, "batch_processing", **SLOW) for _ in range(4)]
        await page.locator(f'#worker-rows tr[data-pid="{survivor.pid}"] .c-running .task-link').nth(2).wait_for()
        served = [[name, 1] for name in found[victim.pid]["task_types"]]
        assert len(served) == 6 and found[survivor.pid]["task_types"] == found[victim.pid]["task_types"]
        for width in (1000, 1400):
            await page.set_viewport_size({"width": width, "height": 900})
            drawn = await page.evaluate(WORKERS_TABLE)
            assert drawn["past"] <= 0 and drawn["types"] == [served, served], (width, drawn)
        for task in slow:
            assert (await client.delete(f"/api/tasks/{task['id']}")).status_code == 200
        for task in slow:
            await wait_for_status(client, task["id"], {"CANCELLED"})
    print(f"\npanel showed the killed worker lost after {lost_after:.2f} s (HEARTBEAT_TTL {TTL} s)")
