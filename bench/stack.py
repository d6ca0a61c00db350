"""Real processes for the scripts run by hand (benchmarks, screenshots): a redis-server, one web
process and a worker on a fresh SQLite file in a temporary directory, all stopped on exit."""

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

from app.redisserver import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stack:
    url: str  # the web process, e.g. http://127.0.0.1:PORT
    port: int
    redis_url: str
    database_url: str


@contextmanager
def running_stack(env: dict[str, str] | None = None,
                  prepare: Callable[[str], None] | None = None) -> Iterator[Stack]:
    """`prepare(database_url)` runs before the processes start (e.g. to fill the database)."""
    with tempfile.TemporaryDirectory() as tmp, RedisServer(free_port(), Path(tmp) / "redis", appendonly=False) as redis:
        database_url = f"sqlite:///{tmp}/tasks.db"
        if prepare is not None:
            prepare(database_url)
        port = free_port()
        environment = {**os.environ, "REDIS_URL": redis.url, "DATABASE_URL": database_url, "DATA_DIR": f"{tmp}/data",
                       "LOG_LEVEL": "WARNING", **(env or {})}
        uvicorn = str(Path(sys.executable).parent / "uvicorn")
        procs = [
            subprocess.Popen([uvicorn, "app.main:create_app", "--factory", "--port", str(port), "--log-level",
                              "warning"], cwd=ROOT, env=environment),
            subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=environment),
        ]
        try:
            stack = Stack(f"http://127.0.0.1:{port}", port, redis.url, database_url)
            _wait_healthy(stack.url)
            yield stack
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)


def _wait_healthy(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("the web process did not become healthy")
