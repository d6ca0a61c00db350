"""The dashboard in a real browser (Debian's chromium via playwright) against the real app and workers."""

import asyncio
import io
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser, Page, Route, WebSocketRoute

from app.settings import Settings
from app.store.stores import open_stores
from app.worker.resilient import ResilientWorker
from launcher.redis_server import free_port
from tests.support.browser import (
    CHROMIUM,
    LIVE,
    ROWS_SHOWN,
    SERVER_DOWN,
    SKIP_REASON,
    Console,
    http_status,
    open_dashboard,
    row,
    stop,
)
from tests.support.servers import make_settings, serve
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

async def test_page_loads_without_console_errors(web: str, page: Page) -> None:
    await open_dashboard(page, web)
    assert await page.locator("#task-type option").count() == 6
    assert await page.locator("#counters [data-count]").count() == 7  # the six statuses, and Scheduled
    assert await page.locator("#empty").is_visible()
    await page.wait_for_timeout(500)  # late errors (a failed fetch, a bad frame) would surface here


async def test_submit_through_form_row_turns_success_without_reload(
    web: str, worker: ResilientWorker, page: Page,
) -> None:
    await open_dashboard(page, web)
    await page.evaluate("window.notReloaded = true")
    await page.select_option("#task-type", "batch_processing")
    await page.fill("#param-data", '["a", "b", "c"]')
    await page.fill("#param-delay_per_item", "0.2")
    await page.click("#submit-form button[type=submit]")
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id and re.fullmatch(r"[0-9a-f]{32}", task_id)

    await page.wait_for_selector(row(task_id, "RUNNING"))
    await page.wait_for_selector(row(task_id, "SUCCESS"))
    assert await page.evaluate("window.notReloaded") is True
    # a success says it with its badge: no "100%" or full bar beside it
    assert await page.locator(f'{row(task_id)} .pct').text_content() == ""
    assert not await page.locator(f'{row(task_id)} .track').is_visible()
    await page.wait_for_selector('[data-count="SUCCESS"] .count:text-is("1")')


async def test_422_is_shown_next_to_the_field_it_names(web: str, page: Page, console: Console) -> None:
    console.expect(http_status(422, "/api/tasks/submit"))
    await open_dashboard(page, web)
    await page.select_option("#task-type", "data_processing")
    await page.fill("#param-rows", "0")
    await page.click("#submit-form button[type=submit]")
    error = page.locator('[data-field="rows"] [data-error-for="rows"]')
    await error.filter(has_text="between 1 and").wait_for()
    assert await page.get_attribute("#param-rows", "aria-invalid") == "true"

    await page.fill("#param-rows", "10")
    await page.click("#submit-form button[type=submit]")
    await page.wait_for_selector("#submit-result [data-open]")
    assert await error.text_content() == ""


async def test_cancel_and_retry_from_the_detail_panel(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    await open_dashboard(page, web)
    task = await submit(client, "batch_processing", data=list(range(30)), delay_per_item=0.1)
    await page.click(f"{row(task['id'])} .task-link")
    panel = f'#detail[data-task-id="{task["id"]}"]'
    await page.wait_for_selector(f'{panel}[data-status="RUNNING"]')
    assert f"task={task['id']}" in page.url

    await page.click(f"{panel} [data-action=cancel]")
    await page.wait_for_selector(f'{panel}[data-status="CANCELLED"]')
    await page.wait_for_selector(row(task["id"], "CANCELLED"))
    await page.locator(f"{panel} .outcome").filter(has_text="CANCELLED").wait_for()
    assert await page.locator(f"{panel} [data-action=cancel]").is_disabled()

    await page.click(f"{panel} [data-action=retry]")
    await page.locator(f"{panel} .outcome").filter(has_text="Retry: the server answered PENDING").wait_for()
    await page.wait_for_selector(f'{panel}[data-status="SUCCESS"]', timeout=20_000)
    await page.wait_for_selector(row(task["id"], "SUCCESS"))
    history = await page.locator(f"{panel} .timeline .badge").all_text_contents()
    assert [h[1:].strip() for h in history] == ["Pending", "Running", "Cancelled", "Pending", "Running", "Success"]
    assert "Attempts" in await page.locator(f"{panel} .fields").inner_text()

    await page.keyboard.press("Escape")
    await page.wait_for_selector("#detail", state="hidden")
    assert "task=" not in page.url


async def test_actions_show_the_servers_error(
    web: str, client: httpx.AsyncClient, page: Page, console: Console,
) -> None:
    """A Retry from a stale view (its button still enabled): the 409's detail is shown in the panel."""
    console.expect(http_status(409, "/retry"))
    task = await submit(client, "text_processing")
    await client.delete(f"/api/tasks/{task['id']}")
    (await client.post(f"/api/tasks/{task['id']}/retry")).raise_for_status()
    await open_dashboard(page, web, f"?task={task['id']}")
    await page.wait_for_selector(f'#detail[data-task-id="{task["id"]}"][data-status="PENDING"]')
    await page.evaluate("document.querySelector('#detail [data-action=retry]').disabled = false")
    await page.click("#detail [data-action=retry]")
    await page.locator("#detail .outcome[data-outcome=error]").filter(has_text="Retry refused (409)").wait_for()


async def test_filters_search_and_paging_live_in_the_url(
    web: str, client: httpx.AsyncClient, page: Page, console: Console,
) -> None:
    console.expect(http_status(422, "/api/tasks/"))
    texts = [await submit(client, "text_processing") for _ in range(3)]
    batches = [await submit(client, "batch_processing") for _ in range(2)]
    await client.delete(f"/api/tasks/{batches[0]['id']}")

    await open_dashboard(page, web, "?task_type=batch_processing")
    await page.wait_for_selector(row(batches[1]["id"]))
    assert await page.locator("tr[data-task-id]").count() == 2
    assert await page.input_value("#filters [name=task_type]") == "batch_processing"

    await page.select_option("#filters [name=status]", "CANCELLED")
    await page.wait_for_function(ROWS_SHOWN, arg=1)
    assert "status=CANCELLED" in page.url and "task_type=batch_processing" in page.url
    await page.wait_for_selector(row(batches[0]["id"], "CANCELLED"))

    await page.go_back()
    await page.wait_for_function(ROWS_SHOWN, arg=2)
    assert await page.input_value("#filters [name=status]") == ""

    await page.select_option("#filters [name=task_type]", "")
    prefix = texts[1]["id"][:10]
    await page.fill("#filters [name=q]", prefix)
    await page.wait_for_function(ROWS_SHOWN, arg=1)
    assert f"q={prefix}" in page.url
    await page.reload()
    await page.wait_for_selector(row(texts[1]["id"]))
    assert await page.locator("tr[data-task-id]").count() == 1
    assert await page.input_value("#filters [name=q]") == prefix

    await page.fill("#filters [name=q]", "not-hex")
    await page.locator('[data-error-for="q"]').filter(has_text="hex").wait_for()
    assert await page.locator("tr[data-task-id]").count() == 0  # no rows of the previous filters under it


async def test_server_side_paging(web: str, client: httpx.AsyncClient, page: Page) -> None:
    tasks = [await submit(client, "text_processing") for _ in range(55)]
    await open_dashboard(page, web)
    await page.wait_for_selector(row(tasks[-1]["id"]))
    assert await page.locator("tr[data-task-id]").count() == 50
    assert await page.text_content("#page-info") == "1–50 of 55"
    await page.click("#page-next")
    await page.wait_for_selector(row(tasks[0]["id"]))
    assert await page.locator("tr[data-task-id]").count() == 5
    assert "page=2" in page.url

    created = await submit(client, "text_processing")  # page 2 does not jump: a pill offers it
    await page.locator("#new-pill").filter(has_text="1 new").wait_for()
    await page.click("#new-pill")
    await page.wait_for_selector(row(created["id"]))
    assert "page=" not in page.url


async def test_new_tasks_appear_live_at_the_top(web: str, client: httpx.AsyncClient, page: Page) -> None:
    first = await submit(client, "text_processing")
    await open_dashboard(page, web)
    await page.wait_for_selector(row(first["id"], "PENDING"))
    second = await submit(client, "email_simulation")
    await page.wait_for_selector(row(second["id"], "PENDING"))
    ids = await page.eval_on_selector_all("tr[data-task-id]", "rows => rows.map(r => r.dataset.taskId)")
    assert ids == [second["id"], first["id"]]
    await page.wait_for_selector('[data-count="PENDING"] .count:text-is("2")')


async def test_no_rest_polling_while_the_socket_is_up(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    await open_dashboard(page, web)
    await page.wait_for_load_state("networkidle")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    tasks = [await submit(client, "batch_processing", data=["x"] * 4, delay_per_item=0.2) for _ in range(3)]
    for task in tasks:
        await page.wait_for_selector(row(task["id"], "SUCCESS"))
    await page.wait_for_timeout(8_000)
    assert [url for url in requests if "/api/tasks" in url] == []


async def test_task_data_is_shown_as_text_never_as_html(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    payload = "<img src=x id=injected onerror=window.pwned=1>"
    task = await submit(client, "batch_processing", data=[payload, None], delay_per_item=0, fail_fast=True)
    await wait_for_status(client, task["id"], {"FAILED"})
    await open_dashboard(page, web, f"?task={task['id']}")
    await page.wait_for_selector('#detail[data-status="FAILED"]')
    assert payload in await page.locator("#detail .json").nth(2).text_content()
    assert "item 1 failed" in await page.locator("#detail .error-text").text_content()
    assert await page.locator("#injected").count() == 0
    assert await page.evaluate("window.pwned") is None


async def test_resume_after_the_web_process_restarts(
    settings: Settings, start_worker: Callable[..., Awaitable[ResilientWorker]], page: Page, console: Console,
) -> None:
    """The web process goes away while a task finishes; the page shows reconnecting, then offline
    (polling), and the final state once the server is back."""
    console.expect(*SERVER_DOWN)
    port = free_port()
    server, serving, _ = await serve(settings, port=port)
    await start_worker()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        await open_dashboard(page, f"127.0.0.1:{port}")
        task = await submit(client, "batch_processing", data=list(range(40)), delay_per_item=0.1)
        await page.wait_for_selector(row(task["id"], "RUNNING"))
        await page.evaluate(RECORD_CONNECTION_STATES)

        await stop(server, serving)
        await wait_in_database(settings, task["id"], "SUCCESS")
        await page.wait_for_selector('#connection[data-connection="offline"]')
        assert await page.get_attribute(row(task["id"]), "data-status") == "RUNNING"

        server, serving, _ = await serve(settings, port=port)
        try:
            await page.wait_for_selector(LIVE)
            await page.wait_for_selector(row(task["id"], "SUCCESS"))
            assert await page.evaluate("window.connectionStates") == ["reconnecting", "offline", "live"]
        finally:
            await stop(server, serving)


# The indicator's states as they change (a fixed-time look could miss the short "reconnecting").
RECORD_CONNECTION_STATES = """
window.connectionStates = [];
const indicator = document.getElementById('connection');
new MutationObserver(() => window.connectionStates.push(indicator.dataset.connection))
  .observe(indicator, {attributes: true, attributeFilter: ['data-connection']});
"""


async def wait_in_database(settings: Settings, task_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    """The task as stored, once it reached `status` (the web process, and its API, are down)."""
    async with open_stores(str(settings.database_url)) as stores:
        async with asyncio.timeout(timeout):
            while (task := await stores.tasks.get(task_id)) is None or task["status"] != status:
                await asyncio.sleep(0.05)
    return dict(task)


async def test_socket_cut_resumes_with_since_and_replays_missed_changes(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    """The WebSocket is cut (the server stays up) while a task finishes: the page reconnects with
    ?since= and the server's replay brings the final state."""
    connections: list[tuple[str, list[dict[str, Any]]]] = []  # url and the frames the server sent on it
    open_routes: list[WebSocketRoute] = []
    cut = asyncio.Event()

    async def route(ws: WebSocketRoute) -> None:
        if cut.is_set():
            await ws.close(code=1011, reason="cut by the test")
            return
        frames: list[dict[str, Any]] = []
        connections.append((ws.url, frames))
        server = ws.connect_to_server()
        server.on_message(lambda message: (frames.append(json.loads(message)), ws.send(message)))
        open_routes.append(ws)

    await page.route_web_socket(re.compile(r"/ws(\?since=\d+)?$"), route)
    await open_dashboard(page, web)
    task = await submit(client, "batch_processing", data=list(range(20)), delay_per_item=0.1)
    await page.wait_for_selector(row(task["id"], "RUNNING"))

    cut.set()
    await open_routes[-1].close(code=1012, reason="cut by the test")
    await page.wait_for_selector('#connection:not([data-connection="live"])')
    await wait_for_status(client, task["id"], {"SUCCESS"})
    cut.clear()
    await page.wait_for_selector(row(task["id"], "SUCCESS"))
    await page.wait_for_selector(LIVE)

    url, frames = connections[-1]
    assert re.search(r"/ws\?since=\d+$", url), url
    replayed = [f["task"]["status"] for f in frames if f.get("change") == "replay" and f["task"]["id"] == task["id"]]
    assert replayed == ["SUCCESS"]


async def test_phone_width_shows_cards_without_sideways_scrolling(
    web: str, client: httpx.AsyncClient, browser: Browser, console: Console,
) -> None:
    task = await submit(client, "text_processing")
    context = await browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = await context.new_page()
    console.watch(page)
    try:
        await open_dashboard(page, web)
        await page.wait_for_selector(row(task["id"]))
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.click(f"{row(task['id'])} .task-link")
        box = await page.locator("#detail").bounding_box()
        assert box is not None and box["width"] == 390
    finally:
        await context.close()
    assert console.unexpected() == []


# --- uploads, artifacts, logs, estimates ------------------------------------------------------


def png(width: int, height: int, noise: bool = False) -> bytes:
    """A real PNG: a colour gradient, or random noise (which does not compress: a large file)."""
    if noise:
        image = Image.frombytes("RGB", (width, height), bytes(range(256)) * (width * height * 3 // 256 + 1))
        image = image.effect_spread(8)
    else:
        image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload_row(field: str, state: str) -> str:
    return f'[data-field="{field}"] .upload[data-state="{state}"]'


async def open_task(page: Page, task_id: str, status: str) -> str:
    await page.click(f"{row(task_id)} .task-link")
    panel = f'#detail[data-task-id="{task_id}"]'
    await page.wait_for_selector(f'{panel}[data-status="{status}"]', timeout=20_000)
    return panel


async def test_csv_uploaded_through_the_form_is_what_data_processing_analyses(
    web: str, worker: ResilientWorker, page: Page, tmp_path: Path,
) -> None:
    csv = tmp_path / "sales.csv"
    csv.write_text("region,amount\n" + "".join(f"{'north' if i % 2 else 'south'},{i}.5\n" for i in range(37)))
    # The upload is held back until the form was submitted: the submit has to wait for it.
    held = asyncio.Event()

    async def hold(route: Route) -> None:
        await held.wait()
        await route.continue_()

    await page.route("**/api/uploads?*", hold)
    await open_dashboard(page, web)
    await page.select_option("#task-type", "data_processing")
    assert await page.get_attribute("#param-upload", "accept") == ".csv,text/csv,text/plain"
    assert await page.get_attribute("#param-upload", "multiple") is None  # max_items is 1
    await page.fill("#param-processing_time", "0")
    await page.set_input_files("#param-upload", str(csv))
    await page.wait_for_selector(upload_row("upload", "uploading"))
    await page.click("#submit-form button[type=submit]")
    await page.locator("#submit-result").filter(has_text="Waiting for 1 upload to finish").wait_for()
    held.set()

    done = page.locator(upload_row("upload", "done"))
    await done.wait_for()
    assert "sales.csv" in await done.inner_text() and f"{csv.stat().st_size} B" in await done.inner_text()
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id
    await page.wait_for_selector(row(task_id, "SUCCESS"), timeout=20_000)
    panel = await open_task(page, task_id, "SUCCESS")
    result = json.loads(await page.locator(f"{panel} .json").nth(1).text_content() or "")
    assert (result["source"], result["file"], result["rows"]) == ("upload", "sales.csv", 37)
    parameters = json.loads(await page.locator(f"{panel} .json").nth(2).text_content() or "")
    assert parameters["upload"] == [result["upload_id"]]


async def test_uploaded_pngs_come_back_as_thumbnails_of_the_asked_width(
    web: str, worker: ResilientWorker, page: Page,
) -> None:
    await open_dashboard(page, web)
    await page.select_option("#task-type", "image_processing")
    assert await page.get_attribute("#param-uploads", "accept") == "image/*"
    assert await page.get_attribute("#param-uploads", "multiple") == ""
    await page.select_option("#param-operation", "resize")
    await page.fill('[aria-label="target_size width"]', "120")
    await page.fill('[aria-label="target_size height"]', "90")
    await page.set_input_files("#param-uploads", [
        {"name": "wide.png", "mimeType": "image/png", "buffer": png(400, 200)},
        {"name": "tall.png", "mimeType": "image/png", "buffer": png(150, 300)},
    ])
    await page.locator(upload_row("uploads", "done")).nth(1).wait_for()
    await page.click("#submit-form button[type=submit]")
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id
    await page.wait_for_selector(row(task_id, "SUCCESS"), timeout=20_000)
    panel = await open_task(page, task_id, "SUCCESS")

    images = page.locator(f"{panel} .files img")
    await page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#detail .files img')];"
        " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }", arg=2)
    assert await images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)") == [120, 120]
    assert await images.evaluate_all("imgs => imgs.map(i => i.getAttribute('loading'))") == ["lazy", "lazy"]
    links = page.locator(f"{panel} .files .thumb a")
    assert await links.first.get_attribute("target") == "_blank"
    assert await links.first.get_attribute("href") == f"/api/tasks/{task_id}/artifacts/image_1.png"
    assert "image_1.png" in await page.locator(f"{panel} .files").inner_text()
    assert (await page.locator(f"{panel} .files img").first.bounding_box() or {})["width"] <= 160


async def test_refused_uploads_show_the_servers_error_next_to_the_field(
    redis_url: str, db_url: str, tmp_path: Path, page: Page, console: Console,
) -> None:
    console.expect(http_status(413, "/api/uploads"), http_status(415, "/api/uploads"))
    server, serving, address = await serve(make_settings(redis_url, db_url, tmp_path / "data", UPLOAD_MAX_BYTES="5000"))
    try:
        await open_dashboard(page, address)
        await page.select_option("#task-type", "image_processing")
        big = png(120, 120, noise=True)
        assert len(big) > 5000
        await page.set_input_files("#param-uploads", [
            {"name": "big.png", "mimeType": "image/png", "buffer": big},
            {"name": "fake.png", "mimeType": "image/png", "buffer": b"these bytes are no image"},
        ])
        errors = page.locator(upload_row("uploads", "error"))
        await errors.nth(1).wait_for()
        texts = sorted(await errors.all_inner_texts())
        assert re.search(r"413: .*exceeds 5000 bytes", texts[0]) and "big.png" in texts[0]
        assert "415: the file's bytes are not an image" in texts[1] and "fake.png" in texts[1]

        await page.click("#submit-form button[type=submit]")
        error = page.locator('[data-field="uploads"] [data-error-for="uploads"]')
        await error.filter(has_text="remove the files that could not be uploaded").wait_for()
        assert await page.get_attribute("#param-uploads", "aria-invalid") == "true"
        assert await page.locator("#submit-result [data-open]").count() == 0

        for _ in range(2):
            await page.locator('[data-field="uploads"] .upload button').first.click()
        await page.click("#submit-form button[type=submit]")
        await page.wait_for_selector("#submit-result [data-open]")  # no files: generated images
    finally:
        await stop(server, serving)


# Each time the log view changes: how many lines it shows, and the panel's status then.
RECORD_LOG = """
window.logChanges = [];
const lines = document.querySelector('#detail .log-lines');
new MutationObserver(() => window.logChanges.push(
  [lines.querySelectorAll('.log-line').length, document.getElementById('detail').dataset.status],
)).observe(lines, {childList: true});
"""


async def test_live_log_streams_while_the_task_runs_and_stays_after_a_reload(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    await open_dashboard(page, web)
    await page.evaluate(RECORD_LOG)
    task = await submit(client, "email_simulation", recipient_count=40, delay_per_email=0.05)
    panel = await open_task(page, task["id"], "RUNNING")
    await page.wait_for_selector(f"{panel}[data-status=SUCCESS]", timeout=20_000)
    stored = (await client.get(f"/api/tasks/{task['id']}/logs")).json()["lines"]
    assert len(stored) > 40
    lines = page.locator(f"{panel} .log-line .log-text")
    await page.wait_for_function("n => document.querySelectorAll('#detail .log-line').length === n", arg=len(stored))
    assert await lines.all_text_contents() == [line["line"] for line in stored]

    seen_running = {count for count, status in await page.evaluate("window.logChanges") if status == "RUNNING"}
    assert len(seen_running - {0}) >= 2, f"lines did not arrive while it ran: {seen_running}"

    await page.reload()
    await page.wait_for_selector(f"{panel}[data-status=SUCCESS]")
    await page.wait_for_function("n => document.querySelectorAll('#detail .log-line').length === n", arg=len(stored))
    assert await lines.all_text_contents() == [line["line"] for line in stored]
    assert await page.locator(f"{panel} .log-status").text_content() == ""


async def test_a_pending_task_without_log_lines_says_so(web: str, client: httpx.AsyncClient, page: Page) -> None:
    task = await submit(client, "text_processing")
    await open_dashboard(page, web, f"?task={task['id']}")
    await page.locator("#detail .log-status").filter(has_text="no log lines").wait_for()


async def test_a_long_log_arrives_over_the_socket_page_by_page(
    web: str, client: httpx.AsyncClient, settings: Settings, page: Page,
) -> None:
    task = await submit(client, "text_processing")  # no worker: it stays queued; its log is written here
    async with open_stores(str(settings.database_url)) as stores:
        for start in range(0, 1200, 300):
            await stores.logs.append(task["id"], 1, [(datetime.now(UTC), f"line {start + i} " + "x" * 1000)
                                                     for i in range(300)])
    asked: list[dict[str, Any]] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: asked.append(json.loads(payload))))
    await open_dashboard(page, web)
    panel = await open_task(page, task["id"], "PENDING")
    await page.wait_for_function("n => document.querySelectorAll('#detail .log-line').length === n", arg=1200)
    texts = await page.locator(f"{panel} .log-line .log-text").all_text_contents()
    assert [text.split(" ")[1] for text in texts] == [str(n) for n in range(1200)]
    pages = [message for message in asked if message.get("type") == "logs" and "after" in message]
    assert len(pages) >= 3  # 1.2 MB of lines: several pages, each asked for once the one before came in


async def test_a_running_task_shows_its_estimate(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    await open_dashboard(page, web)
    task = await submit(client, "batch_processing", data=list(range(50)), delay_per_item=0.1)
    estimate = re.compile(r"^≈ \d+ s left$")
    await page.locator(f"{row(task['id'], 'RUNNING')} .c-runtime .wait").filter(has_text=estimate).wait_for()
    panel = await open_task(page, task["id"], "RUNNING")
    await page.locator(f"{panel} .detail-status .wait").filter(has_text=estimate).wait_for()
    await page.wait_for_selector(f"{panel}[data-status=SUCCESS]", timeout=20_000)
    assert await page.locator(f"{panel} .detail-status .wait").text_content() == ""
    assert await page.locator(f"{row(task['id'])} .c-runtime .wait").text_content() == ""


async def test_pending_tasks_show_their_place_in_the_queue(web: str, client: httpx.AsyncClient, page: Page) -> None:
    tasks = [await submit(client, "text_processing") for _ in range(3)]  # no worker: they stay queued
    await open_dashboard(page, web)
    for position, task in enumerate(tasks, 1):
        cell = page.locator(f"{row(task['id'], 'PENDING')} .c-runtime .wait")
        await cell.filter(has_text=f"#{position} in queue").wait_for()
    panel = await open_task(page, tasks[2]["id"], "PENDING")
    await page.locator(f"{panel} .detail-status .wait").filter(has_text="#3 in queue").wait_for()

    await client.delete(f"/api/tasks/{tasks[0]['id']}")
    await page.wait_for_selector(row(tasks[0]["id"], "CANCELLED"))
    assert await page.locator(f"{row(tasks[0]['id'])} .c-runtime .wait").text_content() == ""


async def test_without_a_socket_the_open_tasks_log_is_polled_over_rest(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    async def refuse(ws: WebSocketRoute) -> None:
        await ws.close(code=1011, reason="no socket in this test")

    await page.route_web_socket(re.compile(r"/ws(\?since=\d+)?$"), refuse)
    log_requests: list[str] = []
    page.on("request", lambda request: log_requests.append(request.url) if "/logs?" in request.url else None)
    task = await submit(client, "email_simulation", recipient_count=40, delay_per_email=0.1)
    await wait_for_status(client, task["id"], {"RUNNING"})
    await page.goto(f"http://{web}/?task={task['id']}")
    await page.wait_for_selector('#connection[data-connection="offline"]')
    await page.wait_for_selector('#detail[data-status="SUCCESS"]', timeout=20_000)
    stored = (await client.get(f"/api/tasks/{task['id']}/logs")).json()["lines"]
    await page.wait_for_function("n => document.querySelectorAll('#detail .log-line').length === n", arg=len(stored))
    assert any(not url.endswith("after=0&limit=5000") for url in log_requests), log_requests  # continued after the last

    await page.click("#detail .icon-button")  # closed: no more log polls
    await page.wait_for_timeout(500)
    polled = len(log_requests)
    await page.wait_for_timeout(4_000)
    assert len(log_requests) == polled


async def test_an_uploaded_csvs_row_moves_with_its_reading_and_says_how_long_is_left(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    # 100,000 rows (2.1 MB: three 1 MiB reads), paced over 4 s: its bar once sat at 0 % until the end.
    body = "id,amount\n" + "".join(f"{i},{i % 97}.5\n" for i in range(100_000))
    upload = (await client.post("/api/uploads", params={"filename": "big.csv"}, content=body.encode(),
                                headers={"content-type": "text/csv"})).json()
    await open_dashboard(page, web)
    await page.evaluate("""() => {
      window.seen = { pct: [], left: [] };
      new MutationObserver(() => {
        const row = document.querySelector('#task-rows tr[data-status="RUNNING"]');
        if (!row) return;
        const pct = row.querySelector('.pct').textContent, wait = row.querySelector('.c-runtime .wait').textContent;
        if (pct && pct !== window.seen.pct.at(-1)) window.seen.pct.push(pct);
        if (wait.endsWith('left')) window.seen.left.push(wait);
      }).observe(document.getElementById('task-rows'), { subtree: true, childList: true, characterData: true });
    }""")
    task = (await client.post("/api/tasks/submit", json={"task_type": "data_processing", "parameters": {
        "upload": [upload["id"]], "processing_time": 4}})).json()
    await page.wait_for_selector(row(task["id"], "SUCCESS"), timeout=30_000)
    seen = await page.evaluate("() => window.seen")
    shown = [int(pct.rstrip(" %")) for pct in seen["pct"]]
    assert shown == sorted(shown), shown  # forward only
    assert len([p for p in shown if 0 < p < 100]) >= 4, shown  # it moved while it read, not 0 then 100
    assert seen["left"], "no time-left estimate was shown while it ran"
