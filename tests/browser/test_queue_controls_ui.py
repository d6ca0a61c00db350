"""The queue's pause in the dashboard, in Debian's chromium: paused from one dashboard, every open
dashboard shows it live; a task submitted meanwhile waits; resumed from another, it runs."""

import httpx
import pytest
from playwright.async_api import Browser, Page

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON, open_dashboard, row
from tests.support.waits import passed_over, submit, wait_for_status, wait_until

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)


async def test_a_pause_shows_on_every_dashboard_and_holds_new_tasks_until_resumed(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page, browser: Browser) -> None:
    other_context = await browser.new_context(viewport={"width": 1400, "height": 900})
    other = await other_context.new_page()
    try:
        await open_dashboard(page, web)
        await open_dashboard(other, web)
        assert await page.is_hidden("#queue-banner")
        await page.click("#queue-toggle")
        for shown in (page, other):  # the one that paused it, and the other one, live
            await shown.wait_for_selector("#queue-banner", state="visible")
            assert await shown.text_content("#queue-toggle") == "Resume queue"
        assert (await client.get("/api/queue")).json()["paused"] is True
        await wait_until(lambda: worker.ctx["gate"].paused, "the worker hears the pause")
        task = await submit(client, "text_processing")
        await page.wait_for_selector(row(task["id"], "PENDING"))
        await passed_over(worker, task["id"])
        assert (await client.get(f"/api/tasks/{task['id']}")).json()["status"] == "PENDING"

        await other.click("#queue-banner [data-resume]")
        await wait_for_status(client, task["id"], {"SUCCESS"})
        for shown in (page, other):
            await shown.wait_for_selector("#queue-banner", state="hidden")
            await shown.wait_for_selector(row(task["id"], "SUCCESS"))
            assert await shown.text_content("#queue-toggle") == "Pause queue"
        # a dashboard opened while it is paused reads the state at its connection
        await client.post("/api/queue/pause")
        late = await other_context.new_page()
        await open_dashboard(late, web)
        await late.wait_for_selector("#queue-banner", state="visible")
    finally:
        await other_context.close()
