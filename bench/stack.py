"""Real processes for the benchmarks and the scripts run by hand (screenshots): a redis-server, web
processes and workers on a fresh SQLite file (or an emptied PostgreSQL database) in a temporary
directory, all stopped on exit."""

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from launcher.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Stack:
    url: str  # the first web process, e.g. http://127.0.0.1:PORT
    port: int
    redis_url: str
    database_url: str
    env: dict[str, str]  # what the processes were started with: to start more (e.g. a worker later)
    urls: tuple[str, ...] = ()  # every web process
    pids: tuple[tuple[str, int], ...] = ()  # ("web" | "worker" | "redis", pid) of each process started


def empty_postgres(url: str) -> None:
    """Drop the app's tables, so a run starts from an empty schema that the app creates."""
    import asyncpg  # only the PostgreSQL runs need it

    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE IF EXISTS tasks, task_logs, schedules, webhook_deliveries")
        finally:
            await conn.close()

    asyncio.run(drop())


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_stack(env: dict[str, str] | None = None, prepare: Callable[[str], None] | None = None, *,
                  database_url: str | None = None, workers: int = 1, webs: int = 1) -> Iterator[Stack]:
    """`prepare(database_url)` runs before the processes start (e.g. to fill the database); a
    PostgreSQL `database_url` is emptied first; `workers=0` starts none (see `start_worker`)."""
    with tempfile.TemporaryDirectory() as tmp, RedisServer(free_port(), Path(tmp) / "redis", appendonly=False) as redis:
        if database_url is None:
            database_url = f"sqlite:///{tmp}/tasks.db"
        else:
            empty_postgres(database_url)
        if prepare is not None:
            prepare(database_url)
        environment = {**os.environ, "REDIS_URL": redis.url, "DATABASE_URL": database_url, "DATA_DIR": f"{tmp}/data",
                       "LOG_LEVEL": "WARNING", **(env or {})}
        ports = [free_port() for _ in range(webs)]
        procs = [subprocess.Popen([str(BIN / "uvicorn"), "app.main:create_app", "--factory", "--port", str(port),
                                   "--log-level", "warning", "--ws-max-size", "65536",
                                   "--ws", "app.web.live.frames:FramesProtocol"], cwd=ROOT, env=environment)
                 for port in ports]
        procs += [start_worker(environment) for _ in range(workers)]
        try:
            urls = tuple(f"http://127.0.0.1:{port}" for port in ports)
            for url in urls:
                _wait_up(url, healthy=workers > 0)
            pids = (*(("web", proc.pid) for proc in procs[:webs]), *(("worker", proc.pid) for proc in procs[webs:]),
                    ("redis", int(redis.pidfile.read_text())))
            yield Stack(urls[0], ports[0], redis.url, database_url, environment, urls, pids)
        finally:
            stop(procs)


def _wait_up(url: str, *, healthy: bool, timeout: float = 30.0) -> None:
    """Healthy (a worker's heartbeat seen), or without workers merely answering."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}/api/health").status_code
            if status == 200 or (not healthy and status == 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the web process did not come up")
