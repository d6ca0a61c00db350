"""The dashboard under a path prefix (ROOT_PATH=/tq) behind a real reverse proxy that strips it
(tests/support/proxy.py, set up as docs/operations.md sets up nginx): every page, API call, file and the
WebSocket go through /tq/, and nothing the browser asks for falls outside it."""

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page

from app.settings import Settings
from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, LIVE, SKIP_REASON, row
from tests.support.proxy import Proxy, proxy
from tests.support.servers import make_settings

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

PREFIX = "/tq"


@pytest.fixture
def settings(redis_url: str, db_url: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, db_url, tmp_path / "data", ROOT_PATH=PREFIX)


@pytest.fixture
async def proxied(web: str) -> AsyncIterator[Proxy]:
    async with proxy(PREFIX, web) as running:
        yield running


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(out, "PNG")
    return out.getvalue()


class Seen:
    """Every URL the page asked for (documents, fetches, images, scripts) and every socket it opened."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.sockets: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda socket: self.sockets.append(socket.url))

    def outside(self, base: str) -> list[str]:
        """URLs neither under `base` nor `base` without its slash (the address as typed)."""
        return [url for url in self.urls if not url.startswith(base) and url != base.rstrip("/")
                and not url.startswith(("data:", "blob:"))]


async def test_every_page_call_file_and_the_socket_work_under_the_prefix(
    proxied: Proxy, worker: ResilientWorker, page: Page,
) -> None:
    seen = Seen(page)
    base = f"http://{proxied.address}{PREFIX}/"
    await page.goto(f"http://{proxied.address}{PREFIX}")  # as typed: the proxy's 301 adds the slash
    assert page.url == base
    await page.wait_for_selector(LIVE)  # the socket, through the proxy
    await page.wait_for_selector("#task-type option", state="attached")  # /api/task-types
    await page.evaluate("window.notReloaded = true")

    # A task with an upload, submitted from the form; its row follows it live.
    await page.select_option("#task-type", "image_processing")
    await page.select_option("#param-operation", "resize")
    await page.fill('[aria-label="target_size width"]', "120")
    await page.fill('[aria-label="target_size height"]', "90")
    await page.set_input_files("#param-uploads", [{"name": "wide.png", "mimeType": "image/png", "buffer": png(400, 200)}])
    await page.locator('[data-field="uploads"] .upload[data-state="done"]').wait_for()
    await page.click("#submit-form button[type=submit]")
    task_id = await (await page.wait_for_selector("#submit-result [data-open]")).text_content()
    assert task_id
    await page.wait_for_selector(row(task_id, "SUCCESS"), timeout=20_000)
    assert await page.evaluate("window.notReloaded") is True  # live, not reloaded

    # Its detail, and the file it made: a link and a thumbnail under the prefix, loaded through the proxy.
    await page.click(f"{row(task_id)} .task-link")
    panel = f'#detail[data-task-id="{task_id}"][data-status="SUCCESS"]'
    await page.wait_for_selector(panel)
    link = page.locator(f"{panel} .files .thumb a").first
    assert await link.get_attribute("href") == f"{PREFIX}/api/tasks/{task_id}/artifacts/image_1.png"
    await page.wait_for_function(
        "() => { const img = document.querySelector('#detail .files img'); return img && img.complete"
        " && img.naturalWidth === 120; }")
    assert page.url.startswith(f"{base}?") and f"task={task_id}" in page.url  # the URL keeps the view

    # The schedules page, from the header: its form, its list, and a run linking back to the dashboard.
    await page.keyboard.press("Escape")  # the open panel's backdrop takes the clicks beside it
    await page.wait_for_selector("#detail", state="hidden")
    await page.click(".nav a[href='schedules.html']")
    await page.wait_for_url(f"{base}schedules.html")
    await page.wait_for_selector("#schedule-form #task-type option", state="attached")
    await page.select_option("#task-type", "text_processing")
    await page.fill("#param-text", "under a prefix")
    await page.fill("#schedule-interval", "1")
    await page.click("#schedule-form button[type=submit]")
    last = page.locator(f"tr[data-schedule-id] .last-run a[href^='{PREFIX}/?task=']")
    await last.wait_for(timeout=20_000)  # the worker's scheduler ran it; the page polled it
    await page.locator("tr[data-schedule-id] [data-action=pause]").click()  # no new run replaces the link
    await page.wait_for_selector('tr[data-schedule-id][data-paused="true"]')
    href = await last.get_attribute("href") or ""
    run_id = href.rpartition("=")[2]
    await page.click(f"tr[data-schedule-id] .last-run a[href='{href}']")
    await page.wait_for_selector(f'#detail[data-task-id="{run_id}"]')
    await page.wait_for_selector(LIVE)

    # The API reference, from the header, reading the document under the prefix.
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#detail", state="hidden")
    await page.click(".nav a[href='docs']")
    await page.wait_for_url(f"{base}docs")
    await page.get_by_text("Submit a task").first.wait_for(timeout=30_000)  # Swagger UI, on a busy machine
    assert PREFIX in await page.locator(".servers select").input_value()  # "Try it out" calls /tq/api/…

    assert seen.outside(base) == []
    assert seen.sockets and all(url.startswith(f"ws://{proxied.address}{PREFIX}/ws") for url in seen.sockets)
    assert proxied.outside == []
    assert f"POST {PREFIX}/api/uploads" in proxied.forwarded and f"GET {PREFIX}/ws" in proxied.forwarded
