"""The SQLite connection layer: every cursor is made, used and collected on its connection's own thread
(store/sqlite.py), whatever store method runs it; and under mixed load from several processes (two web
processes and a worker on one database file, bursts of single submits interleaved with batch submits
and bulk cancels, retries and deletes) no statement fails. A cursor collected on the event loop's
thread resets its statement there, possibly while the connection's thread runs it again for another
cursor ("bad parameter or other API misuse")."""

import asyncio
import gc
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.clock import utcnow
from app.core.status import START, Status
from app.store.backends import TaskDatabase
from app.store.db import Db
from app.store.filters import TaskFilter
from app.store.logs import LogStore
from app.store.queries import TaskQueries
from app.store.schema import create_schema
from app.store.tasks import TaskStore
from launcher.redis_server import free_port
from tests.support.processes import ROOT, process_env, stopped, workers

ROUNDS = 6
SINGLES = 60  # per round, 12 in flight
BATCH = 150  # tasks per batch request, two per round
TASK = {"task_type": "batch_processing", "parameters": {"data": [1, 2], "delay_per_item": 0.01}}
LIMITS = {"SUBMIT_RATE": "1000000", "SUBMIT_BURST": "1000000", "MAX_QUEUED": "1000000"}
FAULTS = ("Traceback", "misuse", "database is locked", "ERROR")


class RecordedCursor(sqlite3.Cursor):
    """Records, in order, where and when each cursor is made and is done with (closed or collected)."""

    events: list[tuple[str, int, int]] = []  # (what, cursor, thread)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.events.append(("made", id(self), threading.get_ident()))

    def close(self) -> None:
        self.events.append(("done", id(self), threading.get_ident()))
        super().close()

    def __del__(self) -> None:
        self.events.append(("done", id(self), threading.get_ident()))


class RecordedConnection(sqlite3.Connection):
    """Every statement through a RecordedCursor (sqlite3's own `execute` would make a plain one)."""

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor(RecordedCursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor(RecordedCursor).executemany(sql, parameters)


def _task(i: int) -> dict[str, Any]:
    return {"id": f"{i:08d}-0000-4000-8000-000000000000", "task_type": "batch_processing", "status": "PENDING",
            "parameters": {"data": [i]}, "progress": 0.0, "created_at": utcnow() - timedelta(seconds=i),
            "updated_at": utcnow(), "timeline": [], "attempts": 0, "dispatch": 0, "seq": i,
            "cancel_requested": False}


async def test_every_cursor_lives_and_dies_on_the_connections_thread_one_at_a_time(tmp_path: Path) -> None:
    """A cursor left open holds its statement: collected after the next cursor took that statement from
    sqlite3's cache, it resets it under that cursor. So each cursor is done with before the next is made,
    on the connection's thread, whichever path ran it."""
    events = RecordedCursor.events
    events.clear()
    database = TaskDatabase(f"sqlite:///{tmp_path / 'tasks.db'}", factory=RecordedConnection)
    await database.connect()
    try:
        db = Db(database)
        await create_schema(db)
        store, logs, queries = TaskStore(db), LogStore(db), TaskQueries(db)
        await store.insert_many([_task(i) for i in range(1, 40)])  # executemany
        await store.insert_many([_task(i) for i in range(41, 80)])
        await store.insert(_task(40))
        task = await store.update(_task(1)["id"], 100, START, {"stage": "started"}, dispatch=0)  # a compiled UPDATE
        assert task is not None and task["status"] == Status.RUNNING
        await logs.append(task["id"], 1, [(utcnow(), "one"), (utcnow(), "two")])
        await queries.page(TaskFilter(), limit=10, offset=0)  # `databases`' own fetch_all
        await db.atomically(lambda: store.delete(_task(2)["id"]))
        async with db.writers_held_off("tasks"):
            pass
    finally:
        await database.disconnect()
    gc.collect()
    made = [cursor for what, cursor, _ in events if what == "made"]
    assert len(made) > 10
    assert {thread for _, _, thread in events} != {threading.get_ident()}
    assert len({thread for _, _, thread in events}) == 1, "a cursor was made or done with off its connection's thread"
    open_cursor = None
    for what, cursor, _ in events:
        if what == "made":
            assert open_cursor is None, "a cursor was made while another was still open"
            open_cursor = cursor
        elif cursor == open_cursor:
            open_cursor = None


def _web(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--port", str(port),
                                 "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health").status_code in (200, 503):
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.terminate()
    raise TimeoutError(f"web process did not start: {log.read_text()}")


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str, list[Path]]]:
    env = process_env(redis_url, f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path / "data", **LIMITS)
    logs = [tmp_path / "web-0.log", tmp_path / "web-1.log"]
    webs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        urls = []
        for log in logs:
            proc, url = _web(env, log)
            webs.append((proc, log))
            urls.append(url)
        with workers(env, tmp_path) as pool:
            pool.start()
            yield urls[0], urls[1], [*logs, tmp_path / "worker-0.log"]
    finally:
        for proc, log in webs:
            stopped(proc, log)


async def _singles(http: httpx.AsyncClient, accepted: list[str]) -> None:
    left = iter(range(SINGLES))

    async def submitter() -> None:
        for _ in left:
            response = await http.post("/api/tasks/submit", json=TASK)
            assert response.status_code == 201, response.text
            accepted.append(response.json()["id"])

    await asyncio.gather(*(submitter() for _ in range(12)))


async def _batch(http: httpx.AsyncClient, accepted: list[str]) -> None:
    response = await http.post("/api/tasks/batch", json={"tasks": [TASK] * BATCH})
    assert response.status_code == 201, response.text
    accepted.extend(task["id"] for task in response.json()["tasks"])


async def _bulk(http: httpx.AsyncClient, action: str, status: str) -> int:
    response = await http.post("/api/tasks/bulk", json={"action": action, "filter": {"status": status}})
    assert response.status_code == 200, response.text
    return int(response.json()["applied"])


async def test_mixed_writes_from_several_processes_meet_no_error(stack: tuple[str, str, list[Path]]) -> None:
    first, second, logs = stack
    accepted: list[str] = []
    deleted = 0
    # A connection idle as long as uvicorn's keep-alive (5 s, httpx's own default expiry too) can be
    # closed by the server as the client reuses it (a ReadError, seen under load): the client lets go first.
    limits = httpx.Limits(keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=first, timeout=60, limits=limits) as a, \
            httpx.AsyncClient(base_url=second, timeout=60, limits=limits) as b:
        for _ in range(ROUNDS):
            outcomes = await asyncio.gather(
                _singles(a, accepted), _batch(b, accepted), _singles(b, accepted), _batch(a, accepted),
                _bulk(a, "cancel", "PENDING"), _bulk(b, "retry", "CANCELLED"), _bulk(a, "delete", "CANCELLED"),
                _bulk(b, "delete", "SUCCESS"))
            deleted += outcomes[-1] + outcomes[-2]
        stored = sum((await a.get("/api/stats")).json()["counts"].values())
    assert len(accepted) == ROUNDS * 2 * (SINGLES + BATCH)
    assert stored + deleted == len(accepted), "a task accepted was lost (or counted twice)"
    for log in logs:
        text = log.read_text()
        assert not [fault for fault in FAULTS if fault in text], f"{log.name}:\n{text[-3000:]}"
