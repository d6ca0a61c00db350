"""At phone width (390 × 844, Debian's chromium): nothing runs past the screen or its panel — the
header's links, pause button and Live pill do not overlap, the list, the workers and charts panels,
the detail sheet with a readable result, and the schedules page fit; what is wider scrolls inside its
own box."""

import httpx
import pytest
from playwright.async_api import Browser, Page

from app.worker.resilient import ResilientWorker
from tests.support.browser import CHROMIUM, SKIP_REASON, open_dashboard, row
from tests.support.waits import submit, wait_for_status

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)

WIDTH = 390

# Visible elements whose right edge passes `limit`, unless a box around them scrolls or clips.
OVERFLOWING = """(limit) => [...document.querySelectorAll('body *')].filter((el) => {
  const box = el.getBoundingClientRect();
  if (box.width === 0 || box.height === 0 || box.right <= limit + 1) return false;
  if (getComputedStyle(el).visibility === 'hidden') return false;
  for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
    if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(up).overflowX)) return false;
  }
  return true;
}).map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)"""

# Pairs of the header's controls whose boxes overlap.
HEADER_OVERLAPS = """() => {
  const parts = [...document.querySelectorAll('.topbar .nav a, .topbar-end > *, .brand')]
    .filter((el) => el.getBoundingClientRect().width > 0);
  const hits = [];
  parts.forEach((a, i) => parts.slice(i + 1).forEach((b) => {
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    if (p.left < q.right - 1 && q.left < p.right - 1 && p.top < q.bottom - 1 && q.top < p.bottom - 1) {
      hits.push(`${a.textContent.trim()} × ${b.textContent.trim()}`);
    }
  }));
  return hits;
}"""


async def phone(browser: Browser) -> Page:
    context = await browser.new_context(viewport={"width": WIDTH, "height": 844})
    return await context.new_page()


async def fits(page: Page) -> None:
    assert await page.evaluate(OVERFLOWING, WIDTH) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert await page.evaluate(HEADER_OVERLAPS) == []


async def test_the_dashboard_its_detail_sheet_and_the_schedules_page_fit_a_phone(
        web: str, client: httpx.AsyncClient, worker: ResilientWorker, browser: Browser) -> None:
    task = await submit(client, "text_processing")
    failed = (await client.post("/api/tasks/submit", json={
        "task_type": "batch_processing", "parameters": {"data": ["a" * 300], "delay_per_item": 0}})).json()
    await wait_for_status(client, task["id"], {"SUCCESS"})
    await wait_for_status(client, failed["id"], {"SUCCESS", "FAILED"})
    page = await phone(browser)
    try:
        await open_dashboard(page, web)
        await page.wait_for_selector(row(task["id"], "SUCCESS"))
        await page.click("#queue-toggle")  # the banner too
        await page.wait_for_selector("#queue-banner", state="visible")
        await fits(page)
        await page.click(f"{row(task['id'])} .task-link")
        await page.wait_for_selector(f'#detail[data-task-id="{task["id"]}"][data-status="SUCCESS"]')
        sheet = await page.locator("#detail").bounding_box()
        assert sheet is not None and sheet["width"] == WIDTH and sheet["y"] > 0  # a sheet, over a dimmed page
        await page.wait_for_selector("#detail-backdrop", state="visible")
        await fits(page)
        await page.mouse.click(WIDTH / 2, 10)  # beside the sheet, on the backdrop: it closes
        await page.wait_for_selector("#detail", state="hidden")
        await page.goto(f"http://{web}/schedules.html")
        await page.wait_for_selector("#schedules-table, .schedule-table", state="attached")
        await fits(page)
    finally:
        await page.context.close()
