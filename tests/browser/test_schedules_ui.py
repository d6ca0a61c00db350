"""The schedules page at the dashboard's standard: its header (pages, live indicator), deletes asked in
an in-page dialog (never `window.confirm`), next runs with their date and time, runs shown live as a
worker makes them, and a phone-width layout where nothing runs past the screen or its panel."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Dialog, Page

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, LIVE, SKIP_REASON

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

PARIS = ZoneInfo("Europe/Paris")  # the page's time zone
HOUR = 3600  # seconds: an interval whose first tick comes after the test
DIALOG = "#delete-dialog[open]"
PHONE = 390


@pytest.fixture
def page_options() -> dict[str, Any]:
    """Paris time: the next run is shown in local time, not in the server's UTC."""
    return {"timezone_id": "Europe/Paris"}


async def create(client: httpx.AsyncClient, name: str, **timing: Any) -> dict[str, Any]:
    response = await client.post("/api/schedules", json={
        "name": name, "task_type": "text_processing", "parameters": {"text": "tick"}, **(timing or {"interval": HOUR})})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def schedule_row(schedule_id: str) -> str:
    return f'tr[data-schedule-id="{schedule_id}"]'


def refuse_browser_dialogs(page: Page) -> list[str]:
    """The messages of native dialogs (`confirm()`, `alert()`) the page opens: the test expects none."""
    opened: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        opened.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


async def open_schedules(page: Page, address: str) -> None:
    await page.goto(f"http://{address}/schedules.html")
    await page.wait_for_selector(LIVE)
    await page.wait_for_selector("#schedule-form #task-type option", state="attached")


async def test_the_header_is_the_dashboards_and_a_delete_is_asked_in_the_page(
    web: str, client: httpx.AsyncClient, page: Page,
) -> None:
    native = refuse_browser_dialogs(page)
    schedule = await create(client, "nightly report")
    await open_schedules(page, web)
    assert await page.inner_text("#connection") == "Live"
    links = await page.eval_on_selector_all(
        ".topbar .nav a", "links => links.map((a) => [a.textContent, a.getAttribute('href'), a.getAttribute('aria-current')])")
    assert links == [["Tasks", "./", None], ["Schedules", "schedules.html", "page"], ["Workers", "./#workers", None],
                     ["Charts", "./#charts", None], ["API", "docs", None]]

    # The next run: its local date and time, and how far off it is; to the millisecond on hover.
    row = schedule_row(schedule["id"])
    at = datetime.fromisoformat(schedule["next_run_at"]).astimezone(PARIS)
    next_run = page.locator(f"{row} .next-run")
    assert await next_run.text_content() == f"{at.day} {at:%b}, {at:%H:%M} · in 1 h"
    assert (await next_run.get_attribute("title") or "").startswith(f"{at:%Y-%m-%d %H:%M:%S}.")

    # Keep (and Escape) keep it, and give the focus back to the button that asked.
    delete = page.locator(f"{row} [data-action=delete]")
    await delete.click()
    await page.wait_for_selector(DIALOG)
    assert await page.text_content("#delete-question") == "Delete the schedule “nightly report”?"
    assert await page.evaluate("document.activeElement.dataset.keep") == ""  # Enter would keep it
    await page.click("#delete-dialog [data-keep]")
    await page.wait_for_selector(DIALOG, state="detached")
    assert await delete.evaluate("button => button === document.activeElement")
    await delete.click()
    await page.wait_for_selector(DIALOG)
    await page.keyboard.press("Escape")
    await page.wait_for_selector(DIALOG, state="detached")
    assert await delete.evaluate("button => button === document.activeElement")
    assert [s["id"] for s in (await client.get("/api/schedules")).json()["schedules"]] == [schedule["id"]]

    await delete.click()
    await page.wait_for_selector(DIALOG)
    await page.click("#delete-dialog button[value=delete]")
    await page.wait_for_selector(row, state="detached")
    await page.wait_for_selector("#schedules-empty", state="visible")
    assert (await client.get("/api/schedules")).json()["schedules"] == []
    assert native == []


async def test_a_run_shows_without_a_reload(
    web: str, client: httpx.AsyncClient, worker: ResilientWorker, page: Page,
) -> None:
    schedule = await create(client, "hourly")
    await open_schedules(page, web)
    row = schedule_row(schedule["id"])
    await page.click(f"{row} [data-action=runs]")
    await page.wait_for_selector("#runs-empty", state="visible")
    await page.evaluate("window.notReloaded = true")

    # Started elsewhere (the API): the page learns of it from the socket, long before its 30 s reload.
    run = (await client.post(f"/api/schedules/{schedule['id']}/run")).json()
    assert run["schedule_id"] == schedule["id"]
    await page.locator(f"{row} .runs").filter(has_text="1").wait_for(timeout=5_000)
    await page.wait_for_selector(f"{row} .last-run a[data-task-id='{run['id']}']", timeout=5_000)
    await page.wait_for_selector(f"#schedule-runs tr[data-task-id='{run['id']}'][data-status='SUCCESS']", timeout=10_000)
    assert await page.evaluate("window.notReloaded") is True


# Elements (the page's scroller, each card and scrolling box, the header) wider inside than they are.
OVERFLOWING = """() => [document.scrollingElement, ...document.querySelectorAll('.card, .table-wrap, .topbar, .nav')]
  .filter((el) => el.scrollWidth > el.clientWidth)
  .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`)"""


async def test_at_phone_width_each_schedule_is_a_card_and_nothing_overflows(
    web: str, client: httpx.AsyncClient, browser: Browser,
) -> None:
    long = await create(client, "the weekly export of every customer's invoices, for the accountants", interval=HOUR)
    await create(client, "cron in a long zone", cron="*/5 * * * *", timezone="America/Argentina/Buenos_Aires")
    paused = await create(client, "paused", interval=HOUR)
    await client.patch(f"/api/schedules/{paused['id']}", json={"paused": True})
    run = (await client.post(f"/api/schedules/{long['id']}/run")).json()
    context = await browser.new_context(viewport={"width": PHONE, "height": 844})
    page = await context.new_page()
    try:
        await open_schedules(page, web)
        await page.locator("tr[data-schedule-id]").nth(2).wait_for()
        await page.wait_for_selector(f"{schedule_row(long['id'])} .last-run a[data-task-id='{run['id']}']")
        await page.click(f"{schedule_row(long['id'])} [data-action=runs]")
        await page.wait_for_selector(f"#schedule-runs tr[data-task-id='{run['id']}']")
        await page.click("#schedule-form-title")  # the form, folded on a phone, opened
        assert await page.evaluate(OVERFLOWING) == []
        # A card: the fields one under another, each with its name.
        next_run = page.locator(f"{schedule_row(long['id'])} .next-run")
        assert await next_run.evaluate("td => getComputedStyle(td, '::before').content") == '"Next run"'
        assert await page.locator("thead").first.is_hidden()
        # The header: every page's link in sight, within the screen.
        boxes = [await link.bounding_box() for link in await page.locator(".topbar .nav a").all()]
        assert all(box is not None and box["width"] > 0 and box["x"] + box["width"] <= PHONE for box in boxes)
    finally:
        await context.close()
