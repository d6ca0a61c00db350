"""Fixtures: a real Redis server, real SQLite files (and PostgreSQL when TEST_DATABASE_URL is set),
the real app served by uvicorn on a free port, real arq workers, and Debian's chromium; and the
markers: browser tests and chaos tests are `slow` (`make test-fast` leaves them out)."""

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.async_api import Browser, Page, async_playwright

from app.settings import Settings
from app.worker.main import create_worker
from app.worker.resilient import ResilientWorker
from launcher.redis_server import RedisServer, free_port
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, Console
from tests.support.servers import make_settings, served

PG_URL = os.environ.get("TEST_DATABASE_URL")
SLOW_PACKAGES = {"browser", "reliability"}  # chromium; killed processes, outages, several hosts, fuzzing


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_browser = {"page", "browser"} & set(getattr(item, "fixturenames", ())) or item.path.parent.name == "browser"
        if in_browser:
            item.add_marker(pytest.mark.browser)
        if in_browser or item.path.parent.name in SLOW_PACKAGES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


async def _reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS tasks, task_logs, schedules, webhook_deliveries")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    if not PG_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    await _reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless, for the browser tests (each module skips without it)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page_options() -> dict[str, Any]:
    """What a browser test's page gets beyond its size (a module overrides this to add, e.g., a time zone)."""
    return {}


@pytest.fixture
async def page(browser: Browser, console: Console, page_options: dict[str, Any]) -> AsyncIterator[Page]:
    """A 1400×900 page whose console errors fail the test (unless the test declared them expected)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, **page_options)
    opened = await context.new_page()
    opened.set_default_timeout(15_000)
    console.watch(opened)
    yield opened
    await context.close()
    assert console.unexpected() == [], "console errors"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data")


@pytest.fixture
async def web(settings: Settings) -> AsyncIterator[str]:
    """The app served by a real uvicorn on a free port; yields host:port."""
    async with served(settings) as address:
        yield address


@pytest.fixture
async def client(web: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{web}", timeout=10) as http:
        yield http


@pytest.fixture
async def start_worker(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[ResilientWorker]]]:
    """Start real arq workers (in this event loop) on the test's Redis and database."""
    started: list[tuple[ResilientWorker, asyncio.Task[None]]] = []

    async def start(**overrides: object) -> ResilientWorker:
        worker = create_worker(settings, handle_signals=False, **overrides)
        task = asyncio.create_task(worker.async_run())
        started.append((worker, task))
        while "runner" not in worker.ctx:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return worker

    yield start
    for worker, task in started:
        await worker.close()
        outcome = (await asyncio.gather(task, return_exceptions=True))[0]
        if outcome is not None and not isinstance(outcome, asyncio.CancelledError):
            raise outcome


@pytest.fixture
async def worker(start_worker: Callable[..., Awaitable[ResilientWorker]]) -> ResilientWorker:
    return await start_worker()
