"""The dashboard against a server with API_TOKEN and READ_TOKEN, in Debian's chromium: it asks for the
token once per browser session, sends it as a header and as the socket's first message, never in a URL."""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, Response, WebSocket

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, LIVE, SKIP_REASON, Console, http_status, row, stop
from tests.support.servers import make_settings, serve
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

WRITE_TOKEN = "write-token-0123456789abcdefghij"
READ_TOKEN = "read-token-0123456789abcdefghijk"
WRONG_TOKEN = "wrong-token-0123456789abcdefghij"
ASKING = "#token-dialog[open]"
# Chromium logs each 401 (before the token is given) and 403 (read-only) answer as a console error.
REFUSED = (http_status(401, "/api/"), http_status(403, "/api/"))
# A socket still connecting without a token is dropped for one with it as soon as the token is given.
ABANDONED = re.compile(r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws.*' failed: "
                       r"WebSocket is closed before the connection is established")


@pytest.fixture
def console() -> Console:
    console = Console()
    console.expect(*REFUSED, ABANDONED)
    return console


@pytest.fixture
async def web(redis_url: str, db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The app with both tokens, on the `settings` fixture's Redis, database and data directory (the
    `worker` fixture's), so tasks submitted here run."""
    server, serving, address = await serve(make_settings(
        redis_url, db_url, tmp_path / "data", API_TOKEN=WRITE_TOKEN, READ_TOKEN=READ_TOKEN))
    yield address
    await stop(server, serving)


@pytest.fixture
async def client(web: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"http://{web}", headers=headers, timeout=10) as http:
        yield http


class Wire:
    """Every request and socket the page made: URLs, request headers, socket frames sent, answers."""

    def __init__(self, page: Page) -> None:
        self.requests: list[Request] = []
        self.sockets: list[tuple[str, list[str]]] = []
        self.statuses: list[tuple[int, str]] = []
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", self._response)
        page.on("websocket", self._socket)

    def _response(self, response: Response) -> None:
        self.statuses.append((response.status, response.url))

    def _socket(self, ws: WebSocket) -> None:
        frames: list[str] = []
        self.sockets.append((ws.url, frames))
        ws.on("framesent", lambda payload: frames.append(payload if isinstance(payload, str) else payload.decode()))

    def urls(self) -> list[str]:
        return [request.url for request in self.requests] + [url for url, _ in self.sockets]

    async def api_authorizations(self, since: int = 0) -> list[str | None]:
        """The Authorization header of each /api/ request from the `since`-th request on."""
        return [(await request.all_headers()).get("authorization")
                for request in self.requests[since:] if "/api/" in request.url]


async def give_token(page: Page, token: str) -> None:
    await page.wait_for_selector(ASKING)
    await page.fill("#token-input", token)
    await page.press("#token-input", "Enter")


async def test_the_token_is_asked_once_kept_for_the_session_and_never_in_a_url(
    web: str, worker: ResilientWorker, page: Page,
) -> None:
    wire = Wire(page)
    await page.goto(f"http://{web}/")
    await page.wait_for_selector(ASKING)
    assert "needs an API token" in await page.locator("#token-message").inner_text()
    assert await page.get_attribute("#token-input", "type") == "password"
    assert await page.evaluate("() => document.activeElement.id") == "token-input"
    assert await page.locator("#token-forget").is_hidden()
    await page.keyboard.press("Escape")  # dismissed: the question waits behind a button in the header
    await page.wait_for_selector("#token-dialog:not([open])", state="attached")
    await page.click("#token-enter")

    await give_token(page, WRONG_TOKEN)
    await page.wait_for_selector('#token-dialog[open][data-reason="refused"]')
    assert "Token refused" in await page.locator("#token-message").inner_text()
    assert await page.evaluate("() => sessionStorage.getItem('taskqueue.token')") is None

    await give_token(page, WRITE_TOKEN)
    await page.wait_for_selector(LIVE)
    await page.wait_for_selector("#task-type option", state="attached")
    assert not await page.locator("#token-dialog").evaluate("d => d.open")
    assert await page.locator("#token-forget").is_visible()

    await page.select_option("#task-type", "batch_processing")
    await page.fill("#param-data", '["a", "b"]')
    await page.fill("#param-delay_per_item", "0")
    await page.click("#submit-form button[type=submit]")
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id
    await page.wait_for_selector(row(task_id, "SUCCESS"))  # over the live socket

    # A reload in the same tab finds the token in sessionStorage: no question, no 401.
    before = len(wire.requests), len(wire.statuses), len(wire.sockets)
    await page.reload()
    await page.wait_for_selector(LIVE)
    await page.wait_for_selector(row(task_id, "SUCCESS"))
    await page.wait_for_selector("#task-type option", state="attached")
    assert not await page.locator("#token-dialog").evaluate("d => d.open")
    assert [status for status, _ in wire.statuses[before[1]:] if status == 401] == []
    authorizations = await wire.api_authorizations(before[0])
    assert authorizations and set(authorizations) == {f"Bearer {WRITE_TOKEN}"}

    # Every socket that had a token authenticated with its first frame, before anything else.
    authenticated = [frames for _, frames in wire.sockets if frames]
    assert len(authenticated) >= 2, wire.sockets  # before and after the reload
    for frames in authenticated:
        assert json.loads(frames[0])["type"] == "auth", frames
    assert {json.loads(frames[0])["token"] for _, frames in wire.sockets[before[2]:] if frames} == {WRITE_TOKEN}

    await page.click("#token-forget")
    await page.wait_for_selector(ASKING)
    assert await page.evaluate("() => sessionStorage.getItem('taskqueue.token')") is None

    for url in wire.urls():
        assert WRITE_TOKEN not in url and WRONG_TOKEN not in url, url


async def test_a_read_only_token_views_but_its_changes_are_refused_where_tried(
    web: str, client: httpx.AsyncClient, page: Page,
) -> None:
    task = await submit(client, "text_processing")  # no worker: it stays queued, so cancellable
    await page.goto(f"http://{web}/")
    await give_token(page, READ_TOKEN)
    await page.wait_for_selector(LIVE)
    await page.wait_for_selector(row(task["id"], "PENDING"))
    await page.wait_for_selector("#task-type option", state="attached")

    await page.click("#submit-form button[type=submit]")
    await page.locator('[data-error-for="parameters"]').filter(has_text="this token is read-only").wait_for()

    await page.click(f"{row(task['id'])} .task-link")
    await page.wait_for_selector(f'#detail[data-task-id="{task["id"]}"][data-status="PENDING"]')
    await page.click("#detail [data-action=cancel]")
    outcome = page.locator("#detail .outcome[data-outcome=error]")
    await outcome.filter(has_text="Cancel refused (403): this token is read-only").wait_for()
    assert (await client.get(f"/api/tasks/{task['id']}")).json()["status"] == "PENDING"
    assert not await page.locator("#token-dialog").evaluate("d => d.open")  # a 403 is no question of the token


async def test_the_files_a_task_produced_load_with_the_token(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    """An <img> cannot send an Authorization header: with a token the thumbnails come as blobs."""
    task = await submit(client, "image_processing", image_count=2, operation="thumbnail", target_size=[64, 64])
    done: dict[str, Any] = await wait_for_status(client, task["id"], {"SUCCESS"})
    assert len(done["result_data"]["artifacts"]) == 2
    wire = Wire(page)
    await page.goto(f"http://{web}/?task={task['id']}")
    await give_token(page, READ_TOKEN)
    await page.wait_for_selector('#detail[data-status="SUCCESS"]')
    await page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('#detail .files img')];"
        " return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0); }")
    sources = await page.locator("#detail .files img").evaluate_all("imgs => imgs.map(i => i.src)")
    assert all(src.startswith("blob:") for src in sources), sources
    links = await page.locator("#detail .files .thumb a").evaluate_all("links => links.map(a => a.href)")
    assert links == sources
    assert [url for url in wire.urls() if READ_TOKEN in url] == []
    files = [request for request in wire.requests if "/artifacts/" in request.url]
    assert len(files) == 2
    assert {(await request.all_headers()).get("authorization") for request in files} == {f"Bearer {READ_TOKEN}"}
