"""Webhooks end to end: a real local HTTP receiver, the real app and real workers — signed deliveries,
retries on 500, a hanging receiver, the global hook, cancels, refusals (bad and private URLs, at submit
and when sent), a worker restart, a task deleted before its delivery — and the outbox on both databases
(written with the final state, one claim per attempt, attempts that run out, pending deliveries that
outlive their task, `atomically`'s transactions)."""

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from app.core.clock import utcnow
from app.core.connections import open_redis
from app.core.status import CANCEL, REQUEUE, Status
from app.core.wire import entry
from app.lifecycle.attempts import Attempts
from app.lifecycle.changes import Changes
from app.lifecycle.new_task import task_row
from app.lifecycle.removal import remove_finished
from app.main import create_app
from app.settings import Settings
from app.store.stores import Stores, open_stores
from app.store.tables import webhook_deliveries
from app.store.uploads import UploadStore, uploads_root
from app.tasks import RetryPolicy
from app.tasks.registry import TaskTypes, load_task_types
from app.webhooks.hooks import Hooks
from app.webhooks.sender import WebhookSender
from app.worker.main import build_worker_settings, create_worker
from app.worker.resilient import ResilientWorker
from app.worker.retention import remove_expired
from tests.support.browser import CHROMIUM, Console, http_status
from tests.support.servers import make_settings, served
from tests.support.waits import wait_for_status

SECRET = "test-secret-0123456789"
FAILING = {"task_type": "batch_processing",
           "parameters": {"data": ["ok", True], "fail_fast": True, "delay_per_item": 0}}
QUICK = {"task_type": "text_processing", "parameters": {"text": "hello webhooks"}}
FINAL = {"SUCCESS", "FAILED", "CANCELLED"}
StartWorker = Callable[..., Awaitable[ResilientWorker]]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A small HTTP/1.1 server on a free port: records each request's headers and raw body, and
    answers with the next scripted status (200 once the script runs out); "hang" never answers."""

    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hanging: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?source=tq"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                assert line.startswith(b"POST /hook?source=tq"), line
                self.received.append(Received(headers, body))
                self._arrived.set()
                answer = self.script.pop(0) if self.script else 200
                if answer == "hang":
                    self.hanging += 1
                    await self._release.wait()
                    return
                writer.write(f"HTTP/1.1 {answer} X\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} requests arrived, expected {count}"
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver()
    await started.start()
    yield started
    await started.stop()



def uploads_and_types(data_dir: Path) -> tuple[UploadStore, TaskTypes]:
    """What removal needs to remove the uploads of the tasks it removes (these tests name none)."""
    return UploadStore(uploads_root(data_dir), 0, 0, 0), load_task_types()


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    # the receiver listens on 127.0.0.1: callbacks to private addresses allowed
    return make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_BACKOFF_BASE="0.05",
                         WEBHOOK_ALLOW_PRIVATE="true")


def verify(received: Received, secret: str = SECRET) -> None:
    """What a receiver does (docs/webhooks.md's recipe): recompute the HMAC over "<t>.<raw body>"."""
    parts = dict(item.split("=", 1) for item in received.headers["x-tq-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(time.time() - int(parts["t"])) < 300


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/tasks/submit", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def deliveries(client: httpx.AsyncClient, task_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/tasks/{task_id}/webhooks")
    assert response.status_code == 200, response.text
    assert response.json()["task_id"] == task_id
    return response.json()["deliveries"]  # type: ignore[no-any-return]


async def settled(client: httpx.AsyncClient, task_id: str, statuses: set[str], count: int = 1,
                  timeout: float = 20.0) -> list[dict[str, Any]]:
    """The task's deliveries once `count` of them are in one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        found = await deliveries(client, task_id)
        if sum(d["status"] in statuses for d in found) >= count:
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[ResilientWorker]:
    """An arq worker with these settings (unlike the `settings` fixture's) for the block."""
    worker = create_worker(settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        await worker.close()
        await asyncio.gather(running, return_exceptions=True)


@asynccontextmanager
async def running_app(settings: Settings, *, worker: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The app served with these settings, with a worker of its own unless `worker` is False: a client on it."""
    async with served(settings) as address, AsyncExitStack() as stack:
        if worker:
            await stack.enter_async_context(running_worker(settings))
        yield await stack.enter_async_context(httpx.AsyncClient(base_url=f"http://{address}", timeout=10))


async def test_a_task_callback_is_delivered_signed_on_success(
        client: httpx.AsyncClient, worker: ResilientWorker, receiver: Receiver) -> None:
    task = await submit(client, {**QUICK, "callback_url": receiver.url})
    assert task["callback_url"] == receiver.url
    done = await wait_for_status(client, task["id"], FINAL)
    assert done["status"] == "SUCCESS" and done["callback_url"] == receiver.url
    [request] = await receiver.wait_for(1)
    verify(request)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tq-event"] == "task.succeeded"
    payload = request.json()
    assert payload["event"] == "task.succeeded" and payload["attempt"] == 1
    assert payload["delivery_id"] == request.headers["x-tq-delivery"]
    assert payload["task"]["id"] == task["id"] and payload["task"]["status"] == "SUCCESS"
    assert payload["task"]["result_data"] == done["result_data"]
    [delivery] = await settled(client, task["id"], {"delivered"})
    assert delivery["id"] == payload["delivery_id"] and delivery["hook"] == "task" and delivery["url"] == receiver.url
    assert delivery["event"] == "task.succeeded" and delivery["attempts"] == 1 and delivery["seq"] == done["seq"]
    assert delivery["last_status_code"] == 200 and delivery["last_error"] is None and delivery["delivered_at"]
    [attempt] = delivery["history"]
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200 and attempt["error"] is None
    # a tampered body no longer matches its signature
    with pytest.raises(AssertionError):
        verify(Received(request.headers, request.body.replace(b"SUCCESS", b"FAILED")))


async def test_a_receiver_answering_500_twice_gets_it_on_the_third_attempt(
        client: httpx.AsyncClient, worker: ResilientWorker, receiver: Receiver) -> None:
    receiver.script = [500, 500, 200]
    task = await submit(client, {**QUICK, "callback_url": receiver.url})
    await wait_for_status(client, task["id"], FINAL)
    requests = await receiver.wait_for(3)
    for request in requests:
        verify(request)
    assert [r.json()["attempt"] for r in requests] == [1, 2, 3]
    assert len({r.headers["x-tq-delivery"] for r in requests}) == 1  # one delivery, three attempts
    [delivery] = await settled(client, task["id"], {"delivered"})
    assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
    assert [(a["attempt"], a["status_code"]) for a in delivery["history"]] == [(1, 500), (2, 500), (3, 200)]
    assert [a["error"] for a in delivery["history"]] == ["answered 500", "answered 500", None]
    assert len(receiver.received) == 3  # delivered: never sent again


async def test_a_hanging_receiver_delays_neither_its_task_nor_the_next(
        redis_url: str, db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_TIMEOUT="5",
                             WEBHOOK_MAX_ATTEMPTS="1", WORKER_CONCURRENCY="1", WEBHOOK_ALLOW_PRIVATE="true")
    receiver.script = ["hang"]
    async with running_app(settings) as client:
        first = await submit(client, {**QUICK, "callback_url": receiver.url})
        await wait_for_status(client, first["id"], FINAL)
        await receiver.wait_for(1)
        # the one slot of this worker runs the next task while the receiver still holds its request
        following = await submit(client, QUICK)
        done = await wait_for_status(client, following["id"], FINAL)
        assert done["status"] == "SUCCESS"
        [delivery] = await deliveries(client, first["id"])
        assert receiver.hanging == 1 and delivery["status"] == "pending" and delivery["history"] == [], \
            "the next task ended only after the hung request was given up"
        [delivery] = await settled(client, first["id"], {"failed"})
        [attempt] = delivery["history"]
        assert attempt["status_code"] is None and attempt["error"] == "no answer within 5 s"
        assert 4_500 <= attempt["duration_ms"] < 20_000


async def test_the_global_hook_hears_only_of_failures_by_default(
        redis_url: str, db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET,
                             WEBHOOK_URL=receiver.url)
    assert settings.webhook_events == "failed"
    async with running_app(settings) as client:
        succeeded = await submit(client, QUICK)
        failed = await submit(client, FAILING)
        assert (await wait_for_status(client, succeeded["id"], FINAL))["status"] == "SUCCESS"
        assert (await wait_for_status(client, failed["id"], FINAL))["status"] == "FAILED"
        [request] = await receiver.wait_for(1)
        verify(request)
        assert request.headers["x-tq-event"] == "task.failed"
        assert request.json()["task"]["id"] == failed["id"] and request.json()["task"]["error_message"]
        # written with the final state or never: a SUCCESS without deliveries gets none later
        assert await deliveries(client, succeeded["id"]) == []
        [delivery] = await settled(client, failed["id"], {"delivered"})
        # the global hook's URL may hold a secret: shown only up to its host
        assert delivery["hook"] == "global" and delivery["url"] == f"http://127.0.0.1:{receiver.port}/…"
        assert len(receiver.received) == 1


async def test_cancels_of_waiting_tasks_fire_one_by_one_and_in_bulk(
        redis_url: str, db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_URL=receiver.url,
                             WEBHOOK_EVENTS="final", WEBHOOK_ALLOW_PRIVATE="true")
    async with running_app(settings) as client:
        one = await submit(client, {**QUICK, "delay": 3600, "callback_url": receiver.url})
        many = [await submit(client, {**QUICK, "delay": 3600}) for _ in range(2)]
        cancelled = await client.delete(f"/api/tasks/{one['id']}")
        assert cancelled.json()["status"] == "CANCELLED"
        bulk = await client.post("/api/tasks/bulk", json={"action": "cancel", "ids": [t["id"] for t in many]})
        assert bulk.json()["applied"] == 2
        requests = await receiver.wait_for(4)  # the cancelled task's own hook and the global one, twice more
        assert {r.headers["x-tq-event"] for r in requests} == {"task.cancelled"}
        by_task: dict[str, int] = {}
        for request in requests:
            verify(request)
            by_task[request.json()["task"]["id"]] = by_task.get(request.json()["task"]["id"], 0) + 1
        assert by_task == {one["id"]: 2, many[0]["id"]: 1, many[1]["id"]: 1}
        hooks = sorted(d["hook"] for d in await settled(client, one["id"], {"delivered"}, count=2))
        assert hooks == ["global", "task"]


async def test_bad_callback_urls_are_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    for bad in ("ftp://example.com/x", "/relative/path", "http://", "not a url", "http://exa mple.com/",
                "javascript:alert(1)", "http://example.com:99999/", 42, "https://example.com/" + "a" * 2000,
                # hosts urlsplit takes but httpx cannot send to (IDNA errors)
                "http://xn--a.com/", "http://\u00e9..com/", "http://\u00ad.com/", "http://a..example.com/"):
        response = await client.post("/api/tasks/submit", json={**QUICK, "callback_url": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["field"] == "callback_url"
    batch = await client.post("/api/tasks/batch", json={"tasks": [QUICK, {**QUICK, "callback_url": "mailto:a@b"}]})
    assert batch.status_code == 422 and batch.json()["field"] == "tasks[1].callback_url"
    ok = await client.post("/api/tasks/batch", json={"tasks": [{**QUICK, "callback_url": "https://example.com/h"}]})
    assert ok.status_code == 201 and ok.json()["tasks"][0]["callback_url"] == "https://example.com/h"
    # a re-run keeps it; a body can change or drop it
    source = ok.json()["tasks"][0]["id"]
    kept = await client.post(f"/api/tasks/{source}/rerun", json={})
    assert kept.json()["callback_url"] == "https://example.com/h"
    dropped = await client.post(f"/api/tasks/{source}/rerun", json={"callback_url": None})
    assert dropped.status_code == 201 and dropped.json()["callback_url"] is None


async def test_without_a_secret_callbacks_are_refused_and_a_global_hook_refuses_to_start(
        redis_url: str, db_url: str, tmp_path: Path) -> None:
    unsigned = make_settings(redis_url, db_url, tmp_path / "data")
    async with running_app(unsigned, worker=False) as client:
        response = await client.post("/api/tasks/submit", json={**QUICK, "callback_url": "https://example.com/h"})
        assert response.status_code == 422 and response.json()["field"] == "callback_url"
        assert "WEBHOOK_SECRET" in response.json()["detail"]
        assert (await client.post("/api/tasks/submit", json={**QUICK, "callback_url": None})).status_code == 201
    no_secret = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_URL="https://example.com/h")
    with pytest.raises(RuntimeError, match="WEBHOOK_SECRET"):
        create_app(no_secret)
    with pytest.raises(RuntimeError, match="WEBHOOK_SECRET"):
        build_worker_settings(no_secret)
    not_a_url = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_URL="example.com", WEBHOOK_SECRET=SECRET)
    with pytest.raises(RuntimeError, match="WEBHOOK_URL must be an absolute"):
        create_app(not_a_url)
    with pytest.raises(ValueError, match="WEBHOOK_EVENTS"):
        make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_EVENTS="all")


async def test_a_pending_delivery_survives_its_worker_and_the_next_worker_sends_it(
        redis_url: str, db_url: str, tmp_path: Path, receiver: Receiver, client: httpx.AsyncClient,
        start_worker: StartWorker) -> None:
    # the first attempt fails and the next is due in about 2 s; the worker stops before then
    slow_retry = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_BACKOFF_BASE="2",
                               WEBHOOK_ALLOW_PRIVATE="true")
    receiver.script = [503]
    async with running_worker(slow_retry):
        task = await submit(client, {**QUICK, "callback_url": receiver.url})
        await wait_for_status(client, task["id"], FINAL)
        [delivery] = await settled(client, task["id"], {"pending"})
        deadline = time.monotonic() + 20
        while not (delivery := (await deliveries(client, task["id"]))[0])["history"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    assert delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["last_status_code"] == 503
    assert len(receiver.received) == 1
    await start_worker()  # a new worker process, the same outbox
    [delivery] = await settled(client, task["id"], {"delivered"})
    assert delivery["attempts"] == 2 and [a["status_code"] for a in delivery["history"]] == [503, 200]
    assert [r.json()["attempt"] for r in receiver.received] == [1, 2]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_the_dashboard_sends_a_callback_url_and_shows_the_deliveries_as_text(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, receiver: Receiver, page: Page,
        console: Console) -> None:
    console.expect(http_status(422, "/api/tasks/submit"))
    await page.goto(f"http://{web}/")
    await page.wait_for_selector("#task-type option", state="attached")
    await page.select_option("#task-type", "text_processing")
    await page.fill("#opt-callback_url", "ftp://example.com/")
    await page.click("#submit-form button[type=submit]")
    await page.locator('[data-error-for="callback_url"]').filter(has_text="http").wait_for()
    assert await page.get_attribute("#opt-callback_url", "aria-invalid") == "true"

    url = receiver.url + "&note=<b>bold</b>"
    await page.fill("#opt-callback_url", url)
    await page.click("#submit-form button[type=submit]")
    await page.click("#submit-result [data-open]")
    panel = page.locator('#detail [data-section="webhooks"]')
    delivered = panel.locator('li[data-status="delivered"]')
    await delivered.wait_for(timeout=20_000)
    assert await panel.locator("b").count() == 0, "a URL was inserted as HTML"
    assert url in await delivered.inner_text() and "task.succeeded" in await delivered.inner_text()
    assert await delivered.locator(".webhook-attempts li").count() == 1
    assert "HTTP 200" in await delivered.locator(".webhook-attempts li").inner_text()
    [request] = receiver.received
    verify(request)
    # a task without webhooks shows no such section
    plain = await submit(client, QUICK)
    await wait_for_status(client, plain["id"], FINAL)
    await page.goto(f"http://{web}/?task={plain['id']}")
    await page.wait_for_selector('#detail[data-status="SUCCESS"]')
    await page.wait_for_timeout(300)
    assert await panel.is_hidden()


async def test_callbacks_to_private_addresses_are_refused_at_submit_unless_allowed(
        redis_url: str, db_url: str, tmp_path: Path) -> None:
    strict = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET)
    assert strict.webhook_allow_private is False  # the default
    async with running_app(strict, worker=False) as client:
        for private in ("http://127.0.0.1:8000/hook", "http://169.254.169.254/latest/meta-data/", "http://[::1]/h",
                        "http://10.1.2.3/h", "http://192.168.0.1/h", "http://localhost:6379/", "http://LOCALHOST./",
                        "http://2130706433/h", "http://127.1/h", "http://0.0.0.0/h", "http://[::ffff:10.0.0.1]/h",
                        "http://224.0.0.1/h"):
            response = await client.post("/api/tasks/submit", json={**QUICK, "callback_url": private})
            assert response.status_code == 422, (private, response.text)
            assert response.json()["field"] == "callback_url"
            assert "WEBHOOK_ALLOW_PRIVATE" in response.json()["detail"], response.text
        batch = await client.post("/api/tasks/batch", json={"tasks": [{**QUICK, "callback_url": "http://127.0.0.1/"}]})
        assert batch.status_code == 422 and batch.json()["field"] == "tasks[0].callback_url"
        # public addresses, and names (checked again when sent), are taken
        for public in ("https://8.8.8.8/h", "https://example.com/h"):
            assert (await submit(client, {**QUICK, "callback_url": public}))["callback_url"] == public


async def test_callbacks_to_loopback_through_transition_addresses_are_refused_at_submit(
        redis_url: str, db_url: str, tmp_path: Path) -> None:
    """NAT64, 6to4, IPv4-compatible, local-use NAT64, a zone id and a percent-encoded host: Python 3.11 calls the
    first three global, and each reaches this machine or a private network (all were taken: 201)."""
    strict = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET)
    async with running_app(strict, worker=False) as client:
        for url in ("http://[64:ff9b::7f00:1]/h", "http://[2002:7f00:1::]/h", "http://[::127.0.0.1]/h",
                    "http://[64:ff9b:1::a00:1]/h", "http://[fe80::1%25eth0]/h", "http://%31%32%37.0.0.1/h"):
            response = await client.post("/api/tasks/submit", json={**QUICK, "callback_url": url})
            assert response.status_code == 422, (url, response.text)
            assert response.json()["field"] == "callback_url"


async def test_a_callback_whose_name_resolves_to_a_private_address_is_refused_when_sent(
        redis_url: str, db_url: str, tmp_path: Path, client: httpx.AsyncClient, receiver: Receiver) -> None:
    # this web process allows private receivers (the `settings` fixture); the worker does not
    strict = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_MAX_ATTEMPTS="3",
                           WEBHOOK_BACKOFF_BASE="0.05")
    async with running_worker(strict):
        task = await submit(client, {**QUICK, "callback_url": f"http://localhost:{receiver.port}/hook?source=tq"})
        await wait_for_status(client, task["id"], FINAL)
        [delivery] = await settled(client, task["id"], {"failed"})
        assert delivery["attempts"] == 1, "a refusal is not tried again"
        [attempt] = delivery["history"]
        assert attempt["status_code"] is None
        assert re.search(r"localhost resolves to (127\.0\.0\.1|::1), not a public address", attempt["error"]), attempt
        assert receiver.received == []


async def test_a_failed_task_deleted_at_once_still_reports_its_failure(
        redis_url: str, db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    # the first attempt is refused and the next one comes about 3 s later: the task is deleted in between
    settings = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_URL=receiver.url,
                             WEBHOOK_BACKOFF_BASE="3")
    receiver.script = [503]
    async with running_app(settings) as client:
        failed = await submit(client, FAILING)
        assert (await wait_for_status(client, failed["id"], FINAL))["status"] == "FAILED"
        bulk = await client.post("/api/tasks/bulk", json={"action": "delete", "ids": [failed["id"]]})
        assert bulk.status_code == 200 and bulk.json()["applied"] == 1, bulk.text
        assert (await client.get(f"/api/tasks/{failed['id']}")).status_code == 404
        requests = await receiver.wait_for(2)
        assert [r.json()["attempt"] for r in requests] == [1, 2]
        for request in requests:
            verify(request)
            assert request.headers["x-tq-event"] == "task.failed" and request.json()["task"]["id"] == failed["id"]
        async with open_stores(db_url) as stores:  # once sent, the delivery goes after its task
            deadline = time.monotonic() + 20
            while left := await stores.webhooks.for_task(failed["id"]):
                assert time.monotonic() < deadline, left
                await asyncio.sleep(0.05)


async def test_a_rerun_drops_an_inherited_callback_the_server_no_longer_takes(
        redis_url: str, db_url: str, tmp_path: Path) -> None:
    signed = make_settings(redis_url, db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET)
    unsigned = make_settings(redis_url, db_url, tmp_path / "data")
    async with running_app(signed, worker=False) as client:
        source = await submit(client, {**QUICK, "delay": 3600, "callback_url": "https://example.com/h"})
    async with running_app(unsigned, worker=False) as client:  # the secret was removed since
        rerun = await client.post(f"/api/tasks/{source['id']}/rerun", json={"parameters": {"text": "again"}})
        assert rerun.status_code == 201, rerun.text
        assert rerun.json()["callback_url"] is None and rerun.json()["source_task_id"] == source["id"]
        # one the caller sends is still checked
        explicit = await client.post(f"/api/tasks/{source['id']}/rerun", json={"callback_url": "https://example.com/h"})
        assert explicit.status_code == 422 and explicit.json()["field"] == "callback_url"
        assert "WEBHOOK_SECRET" in explicit.json()["detail"]


# --- the outbox itself, on SQLite and PostgreSQL ------------------------------------------------


@pytest.fixture
async def outbox(any_db_url: str, redis_url: str) -> AsyncIterator[tuple[Stores, Changes]]:
    async with open_stores(any_db_url) as stores, open_redis(redis_url, "tq:test") as redis:
        yield stores, Changes(stores, redis, Hooks(url="https://global.example/h", every_final=True, signed=True))


async def test_final_changes_write_their_deliveries_and_removal_takes_the_sent_ones(
        outbox: tuple[Stores, Changes], tmp_path: Path) -> None:
    _, changes = outbox
    rows = [task_row("text_processing", {}, {"callback_url": "https://a.example/h"}, signed=True),
            task_row("text_processing", {}, {}, signed=True), task_row("text_processing", {}, {}, signed=True)]
    tasks = [await changes.store.insert({**row, "seq": 1000 + i}) for i, row in enumerate(rows)]
    ended = await changes.update(tasks[0]["id"], CANCEL, {}, entry(Status.CANCELLED))
    assert ended is not None
    assert sorted((d["hook"], d["event"], d["seq"]) for d in await changes.stores.webhooks.for_task(tasks[0]["id"])) == [
        ("global", "task.cancelled", ended["seq"]), ("task", "task.cancelled", ended["seq"])]
    # a change that is not final writes none; a bulk move to a final state writes one per task
    await changes.update(tasks[1]["id"], REQUEUE, {"stage": "still waiting"})
    assert await changes.stores.webhooks.for_task(tasks[1]["id"]) == []
    moved = await changes.update_many([t["id"] for t in tasks[1:]], CANCEL, {}, entry(Status.CANCELLED))
    assert len(moved) == 2
    for task in tasks[1:]:
        assert [d["hook"] for d in await changes.stores.webhooks.for_task(task["id"])] == ["global"]
    # tasks[0]'s own callback was sent; every other delivery is still pending
    [sent] = [d for d in await changes.stores.webhooks.for_task(tasks[0]["id"]) if d["hook"] == "task"]
    now = utcnow()
    claimed = await changes.stores.webhooks.claim(sent["id"], "w", now, now + timedelta(seconds=30), 8)
    assert claimed is not None
    attempt = {"attempt": 1, "at": now.isoformat(), "status_code": 200, "error": None, "duration_ms": 1.0}
    assert await changes.stores.webhooks.record(claimed, attempt, "delivered", None)  # type: ignore[arg-type]
    removed = await remove_finished(changes, tmp_path, *uploads_and_types(tmp_path), [t["id"] for t in tasks])
    assert sorted(removed) == sorted(t["id"] for t in tasks)
    # the sent one went with its task; the pending ones stay, to be sent with their copy of the task
    assert [(d["hook"], d["status"]) for d in await changes.stores.webhooks.for_task(tasks[0]["id"])] == [("global", "pending")]
    for task in tasks[1:]:
        assert [(d["hook"], d["status"]) for d in await changes.stores.webhooks.for_task(task["id"])] == [("global", "pending")]


async def test_one_claim_per_attempt_and_only_the_lease_holder_records(outbox: tuple[Stores, Changes]) -> None:
    stores, changes = outbox
    store = stores.tasks
    task = await store.insert({**task_row("text_processing", {}, {"callback_url": "https://a.example/h"},
                                          signed=True), "seq": 5000})
    await changes.update(task["id"], CANCEL, {}, entry(Status.CANCELLED))
    webhooks = changes.stores.webhooks
    now = utcnow()
    due = await webhooks.due(now, 10)
    assert len(due) == 2
    lease = now + timedelta(seconds=30)
    claims = await asyncio.gather(*(webhooks.claim(due[0], f"worker-{i}", now, lease, 8) for i in range(5)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0]["attempts"] == 1
    assert due[0] not in await webhooks.due(now, 10), "a leased delivery is not due again before its lease ends"
    attempt = {"attempt": 1, "at": now.isoformat(), "status_code": 500, "error": "answered 500", "duration_ms": 1.0}
    impostor = {**won[0], "leased_by": "someone-else"}
    assert not await webhooks.record(impostor, attempt, "pending", now)  # type: ignore[arg-type]
    assert await webhooks.record(won[0], attempt, "pending", now)  # type: ignore[arg-type]
    assert not await webhooks.record(won[0], attempt, "pending", now), "recorded twice"  # type: ignore[arg-type]
    [shown] = [d for d in await webhooks.for_task(task["id"]) if d["id"] == due[0]]
    assert shown["status"] == "pending" and shown["attempts"] == 1 and shown["history"] == [attempt]
    again = await webhooks.claim(due[0], "worker-9", utcnow(), lease, 8)
    assert again is not None and again["attempts"] == 2 and again["history"] == [attempt]


async def test_the_watchdogs_recovery_of_a_lost_attempt_writes_deliveries_too(
        outbox: tuple[Stores, Changes]) -> None:
    stores, changes = outbox
    store = stores.tasks
    attempts = Attempts(changes)
    row = task_row("text_processing", {}, {"callback_url": "https://a.example/h", "max_attempts": 1}, signed=True)
    lost = [await store.insert({**row, "id": f"{i}{row['id'][1:]}", "seq": 7000 + i, "status": "RUNNING",
                                "attempts": 1, "worker": "gone", "cancel_requested": bool(i)}) for i in range(2)]
    failed = await attempts.recover(lost[0], "worker gone stopped responding", RetryPolicy())
    cancelled = await attempts.recover(lost[1], "worker gone stopped responding", RetryPolicy())
    assert failed is not None and failed["status"] == "FAILED"
    assert cancelled is not None and cancelled["status"] == "CANCELLED"
    for task, event in ((failed, "task.failed"), (cancelled, "task.cancelled")):
        found = await changes.stores.webhooks.for_task(task["id"])
        assert sorted((d["hook"], d["event"], d["seq"]) for d in found) == [
            ("global", event, task["seq"]), ("task", event, task["seq"])]


async def test_an_unsendable_url_fails_after_its_attempts_instead_of_looping(
        any_db_url: str, redis_url: str, tmp_path: Path) -> None:
    # private receivers allowed: the URL goes straight to httpx, which cannot send to its host
    settings = make_settings(redis_url, any_db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET, WEBHOOK_MAX_ATTEMPTS="3",
                             WEBHOOK_BACKOFF_BASE="0.01", WEBHOOK_ALLOW_PRIVATE="true")
    async with open_stores(any_db_url) as stores, open_redis(redis_url, "tq:test") as redis:
        store, changes = stores.tasks, Changes(stores, redis, Hooks(signed=True))
        # stored before the submit's check refused such hosts
        task = await store.insert({**task_row("text_processing", {}, {}, signed=True),
                                   "callback_url": "http://xn--a.com/", "seq": 9000})
        await changes.update(task["id"], CANCEL, {}, entry(Status.CANCELLED))
        sending = asyncio.create_task(WebhookSender(changes.stores.webhooks, "test-worker", settings).run())
        try:
            deadline = time.monotonic() + 20
            while (found := await changes.stores.webhooks.for_task(task["id"]))[0]["status"] == "pending":
                assert time.monotonic() < deadline, found
                await asyncio.sleep(0.05)
            [delivery] = found
            assert delivery["status"] == "failed" and delivery["attempts"] == 3, delivery
            assert [a["attempt"] for a in delivery["history"]] == [1, 2, 3]
            assert all("Codepoint" in a["error"] for a in delivery["history"]), delivery["history"]
            # a delivery whose attempts ran out unrecorded (its worker died mid-request) is given up, not sent
            await stores.db.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == delivery["id"])
                                    .values(status="pending", next_attempt_at=utcnow()))
            while (found := await changes.stores.webhooks.for_task(task["id"]))[0]["status"] == "pending":
                assert time.monotonic() < deadline, found
                await asyncio.sleep(0.05)
            assert found[0]["attempts"] == 3 and "WEBHOOK_MAX_ATTEMPTS" in found[0]["last_error"]
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        now = utcnow()
        assert await changes.stores.webhooks.claim(delivery["id"], "w", now, now + timedelta(seconds=30), 3) is None


async def test_a_removed_tasks_pending_delivery_is_sent_then_swept(
        any_db_url: str, redis_url: str, tmp_path: Path, receiver: Receiver) -> None:
    settings = make_settings(redis_url, any_db_url, tmp_path / "data", WEBHOOK_SECRET=SECRET)
    async with open_stores(any_db_url) as stores, open_redis(redis_url, "tq:test") as redis:
        store, changes = stores.tasks, Changes(stores, redis, Hooks(url=receiver.url, every_final=True, signed=True))
        tasks = [await store.insert({**task_row("text_processing", {}, {}, signed=True), "seq": 9100 + i})
                 for i in range(2)]
        for task in tasks:
            await changes.update(task["id"], CANCEL, {},
                                 entry(Status.CANCELLED))
        removed = await remove_finished(changes, tmp_path, *uploads_and_types(tmp_path), [tasks[0]["id"]])
        assert removed == [tasks[0]["id"]]
        assert [d["status"] for d in await changes.stores.webhooks.for_task(tasks[0]["id"])] == ["pending"]
        # a sent delivery whose task was removed without it (a removal racing the record of its last attempt)
        [other] = await changes.stores.webhooks.for_task(tasks[1]["id"])
        now = utcnow()
        claimed = await changes.stores.webhooks.claim(other["id"], "w", now, now + timedelta(seconds=30), 8)
        assert claimed is not None
        attempt = {"attempt": 1, "at": now.isoformat(), "status_code": 200, "error": None, "duration_ms": 1.0}
        assert await changes.stores.webhooks.record(claimed, attempt, "delivered", None)  # type: ignore[arg-type]
        await store.delete(tasks[1]["id"])
        # no task old enough, and the pass sweeps
        assert await remove_expired(changes, tmp_path, *uploads_and_types(tmp_path), 30) == 0
        assert await changes.stores.webhooks.for_task(tasks[1]["id"]) == []
        assert len(await changes.stores.webhooks.for_task(tasks[0]["id"])) == 1, "a pending one is not swept"
        sending = asyncio.create_task(WebhookSender(changes.stores.webhooks, "test-worker", settings).run())
        try:
            [request] = await receiver.wait_for(1)
            verify(request)
            assert request.json()["task"]["id"] == tasks[0]["id"] and request.json()["event"] == "task.cancelled"
            deadline = time.monotonic() + 20
            while left := await changes.stores.webhooks.for_task(tasks[0]["id"]):  # delivered: it goes after its task
                assert time.monotonic() < deadline, left
                await asyncio.sleep(0.05)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)


async def test_atomically_called_inside_its_own_work_joins_the_transaction(any_db_url: str) -> None:
    async with open_stores(any_db_url) as stores:
        row = {**task_row("text_processing", {}, {}), "seq": 9201}
        db, store = stores.db, stores.tasks

        async def nested() -> None:  # the same task calling it again joins: both inserts roll back together
            await db.atomically(lambda: store.insert(row))
            raise RuntimeError("rolled back")

        with pytest.raises(RuntimeError, match="rolled back"):
            await db.atomically(nested)
        assert await store.get(row["id"]) is None
