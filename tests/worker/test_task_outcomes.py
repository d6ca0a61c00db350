"""How a built-in type that works item by item ends: some items failed → SUCCESS with the counts; every
item failed → FAILED naming the counts and the first error, tried again only when every failure was a
server's "not now" (SMTP 4xx)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.status import FINAL
from app.tasks import TransientError
from app.tasks.builtin.email_simulation import DeliveryDeferred, DeliveryFailed
from app.worker.main import create_worker
from app.worker.resilient import ResilientWorker
from tests.support.servers import make_settings, serve
from tests.support.smtp import Collector
from tests.support.task_runs import run
from tests.support.waits import submit, wait_for_status

SIMULATED = "simulated failure (failure_rate), not sent"


@pytest.mark.asyncio
@pytest.mark.parametrize(("count", "message"), [
    (3, f"all 3 e-mails failed: user1@example.test: failed: {SIMULATED}"),
    (1, f"the e-mail failed: user1@example.test: failed: {SIMULATED}"),
])
async def test_emails_that_all_fail_fail_the_attempt_for_good(count: int, message: str, tmp_path: Path) -> None:
    with pytest.raises(DeliveryFailed) as caught:
        await run("email_simulation", tmp_path, recipient_count=count, delay_per_email=0, failure_rate=1)
    assert str(caught.value) == message and not isinstance(caught.value, TransientError)


@pytest.mark.asyncio
@pytest.mark.parametrize(("answer", "error"), [
    ("550 5.1.1 mailbox unavailable", DeliveryFailed),
    ("451 4.7.1 greylisted, try again later", DeliveryDeferred),
])
async def test_a_server_refusing_every_recipient_fails_the_attempt(answer: str, error: type, tmp_path: Path,
                                                                  smtp_server: Any) -> None:
    address = smtp_server(Collector(refuse_all=answer))
    with pytest.raises(DeliveryFailed) as caught:
        await run("email_simulation", tmp_path, smtp_url=f"smtp://{address}", recipient_count=3, delay_per_email=0)
    assert type(caught.value) is error
    assert str(caught.value) == f"all 3 e-mails failed: user1@example.test: failed: {answer}"
    assert isinstance(caught.value, TransientError) == (error is DeliveryDeferred)


@pytest.mark.asyncio
async def test_a_run_that_sends_one_succeeds_with_its_counts(tmp_path: Path, smtp_server: Any) -> None:
    refused = tuple(f"user{n}@example.test" for n in (1, 2, 4))
    address = smtp_server(Collector(refuse=refused))
    result, _ = await run("email_simulation", tmp_path, smtp_url=f"smtp://{address}", recipient_count=4,
                          delay_per_email=0)
    assert (result["sent"], result["failed"]) == (1, 3)


@pytest.mark.asyncio
@pytest.mark.parametrize(("data", "message"), [
    ([None, True, 1e200], "all 3 items failed: item 0: unsupported item type"),
    ([1e300], "the item failed: item 0: number too large"),
])
async def test_a_batch_whose_items_all_fail_fails(data: list[Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        await run("batch_processing", tmp_path, data=data, delay_per_item=0)
    assert str(caught.value) == message


@pytest.mark.asyncio
async def test_an_empty_batch_succeeds(tmp_path: Path) -> None:
    result, _ = await run("batch_processing", tmp_path, data=[], delay_per_item=0)
    assert (result["total"], result["succeeded"], result["failed"]) == (0, 0, 0)


# --- through a real worker ---------------------------------------------------------------------

async def test_every_email_failing_ends_failed_at_once(client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    task = await submit(client, "email_simulation", recipient_count=3, delay_per_email=0, failure_rate=1)
    done = await wait_for_status(client, task["id"], FINAL)
    assert (done["status"], done["attempts"], done["result_data"]) == ("FAILED", 1, None)
    assert done["error_message"] == f"DeliveryFailed: all 3 e-mails failed: user1@example.test: failed: {SIMULATED}"
    assert done["progress"] == 100  # every e-mail was tried: the work went to its end
    logs = (await client.get(f"/api/tasks/{task['id']}/logs")).json()
    assert "0 sent, 3 failed" in [line["line"] for line in logs["lines"]]


async def test_some_emails_failing_ends_in_success_with_the_counts(client: httpx.AsyncClient,
                                                                   worker: ResilientWorker) -> None:
    task = await submit(client, "email_simulation", recipient_count=20, delay_per_email=0, failure_rate=0.5, seed=3)
    done = await wait_for_status(client, task["id"], FINAL)
    result = done["result_data"]
    assert done["status"] == "SUCCESS" and result["failed"] > 0 and result["sent"] > 0
    assert result["sent"] + result["failed"] == 20


@pytest.mark.parametrize(("data", "status", "error"), [
    ([None, True, 1e200], "FAILED", "ValueError: all 3 items failed: item 0: unsupported item type"),
    (["a", None, 2], "SUCCESS", None),
])
async def test_a_batch_fails_only_when_every_item_does(data: list[Any], status: str, error: str | None,
                                                       client: httpx.AsyncClient, worker: ResilientWorker) -> None:
    task = await submit(client, "batch_processing", data=data, delay_per_item=0)
    done = await wait_for_status(client, task["id"], FINAL)
    assert (done["status"], done["attempts"], done["error_message"]) == (status, 1, error)
    if status == "SUCCESS":
        assert (done["result_data"]["succeeded"], done["result_data"]["failed"]) == (2, 1)


async def test_an_integer_whose_square_json_cannot_hold_fails_its_item_once(client: httpx.AsyncClient,
                                                                           worker: ResilientWorker) -> None:
    """-1e2200 as an integer: its square has 4401 digits, more than Python writes in decimal. The item
    fails as too large (once, naming it), rather than the whole result being unwritable."""
    huge = "-1" + "0" * 2200
    body = f'{{"task_type": "batch_processing", "parameters": {{"data": [{huge}], "delay_per_item": 0}}}}'
    response = await client.post("/api/tasks/submit", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text
    done = await wait_for_status(client, response.json()["id"], FINAL)
    assert (done["status"], done["attempts"]) == ("FAILED", 1)
    assert done["error_message"] == "ValueError: the item failed: item 0: number too large"
    body = body.replace(f"[{huge}]", f"[{huge}, 3]")
    response = await client.post("/api/tasks/submit", content=body, headers={"content-type": "application/json"})
    done = await wait_for_status(client, response.json()["id"], FINAL)
    assert (done["status"], done["attempts"], done["result_data"]["failed"]) == ("SUCCESS", 1, 1)
    assert done["result_data"]["items"][0] == {"index": 0, "ok": False, "error": "number too large"}


@asynccontextmanager
async def stack_with_smtp(redis_url: str, db_url: str, tmp_path: Path, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app and a worker sending e-mail to the SMTP server at `address`."""
    settings = make_settings(redis_url, db_url, tmp_path / "data", SMTP_URL=f"smtp://{address}")
    server, serving, web = await serve(settings)
    worker = create_worker(settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        async with httpx.AsyncClient(base_url=f"http://{web}", timeout=10) as client:
            yield client
    finally:
        await worker.close()
        await asyncio.gather(running, return_exceptions=True)
        server.should_exit = True
        await serving


@pytest.mark.parametrize(("answer", "attempts", "error"), [
    ("451 4.7.1 greylisted, try again later", 2, "failed after 2 attempts: DeliveryDeferred: all 2 e-mails failed"),
    ("550 5.1.1 mailbox unavailable", 1, "DeliveryFailed: all 2 e-mails failed"),
])
async def test_a_server_refusing_every_message_is_retried_only_when_it_says_not_now(
    answer: str, attempts: int, error: str, redis_url: str, db_url: str, tmp_path: Path, smtp_server: Any
) -> None:
    handler = Collector(refuse_all=answer)
    async with stack_with_smtp(redis_url, db_url, tmp_path, smtp_server(handler)) as client:
        response = await client.post("/api/tasks/submit", json={
            "task_type": "email_simulation", "parameters": {"recipient_count": 2, "delay_per_email": 0},
            "max_attempts": 2})
        done = await wait_for_status(client, response.json()["id"], FINAL, timeout=30)
    assert (done["status"], done["attempts"]) == ("FAILED", attempts)
    assert done["error_message"] == f"{error}: user1@example.test: failed: {answer}"
    retried = [entry for entry in done["timeline"] if entry["status"] == "RETRYING"]
    assert len(retried) == attempts - 1 and handler.recipients_asked == 2 * attempts
