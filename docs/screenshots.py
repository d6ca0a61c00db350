"""Regenerates the documentation's screenshots (docs/dashboard.png, docs/dashboard-dark.png,
docs/phone.png, docs/schedules.png, docs/workers.png, docs/charts.png).

Starts its own redis-server, web process and a worker running two tasks at a time, submits tasks
that end in every state (and leaves some running, some queued and one scheduled an hour ahead), and
photographs the dashboard in Debian's chromium at 1400×900: light with the detail panel open on the
finished data_processing task (its CSV statistics, over the dimmed list), dark with the list alone and
two rows ticked (the bulk bar shows only then); and at 390×844 with the panel open as a sheet on the
finished summary. Then it makes three schedules (one paused, one run twice by hand) and photographs
the Schedules page with those runs. Then three more workers join, tasks of every type trickle in for
a few minutes (some fail, some wait in the queue), one worker is SIGKILLed and one stopped, and the
workers and charts panels are photographed from that real data.
Run: `.venv/bin/python docs/screenshots.py` (about eight minutes).
"""

import asyncio
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import running_stack, start_worker, stop

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
SLOW = {"data": list(range(200)), "delay_per_item": 0.5}
TRICKLE_MINUTES = 6  # of tasks for the charts: a few minutes of bars
FAILING = {"data": ["a", None], "fail_fast": True, "delay_per_item": 0}
# The panel is shot once what it fetches after opening is in: the readable result (and its images),
# the log, and the parameters' titles (their section is aria-busy until then). A function, not an
# expression: playwright would eval() that, which the page's CSP refuses.
DETAIL_LOADED = ("() => { const d = document.querySelector('#detail');"
                 " return d.querySelector('.result-view') && d.querySelector('.log-line')"
                 " && !d.querySelector('[aria-busy=\"true\"]')"
                 " && [...d.querySelectorAll('img')].every(i => i.complete && i.naturalWidth); }")

# An element's box in the page's coordinates (a clip of a full-page screenshot).
PAGE_BOX = ("el => { const r = el.getBoundingClientRect();"
            " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; }")


def submit(http: httpx.Client, task_type: str, *, start_in: float | None = None, **parameters: object) -> dict:
    body: dict[str, object] = {"task_type": task_type, "parameters": parameters}
    if start_in is not None:
        body["delay"] = start_in
    answer = http.post("/api/tasks/submit", json=body)
    answer.raise_for_status()
    return answer.json()


def wait_status(http: httpx.Client, task_id: str, statuses: set[str]) -> None:
    deadline = time.monotonic() + 30
    while http.get(f"/api/tasks/{task_id}").json()["status"] not in statuses:
        if time.monotonic() > deadline:
            raise TimeoutError(task_id)
        time.sleep(0.05)


def populate(http: httpx.Client) -> dict[str, str]:
    """Finished tasks of each kind, one cancelled, two running (worker is full), one queued, one
    scheduled an hour ahead; returns the ids of the finished tasks by type."""
    finished = {}
    for task_type, parameters in [("text_processing", {}), ("ai_summarization", {}),
                                  ("data_processing", {"rows": 20000, "processing_time": 0}),
                                  ("image_processing", {"image_count": 3, "operation": "thumbnail",
                                                        "target_size": [160, 160]}),
                                  ("batch_processing", {"data": ["a", None], "fail_fast": True, "delay_per_item": 0}),
                                  ("email_simulation", {"recipient_count": 5, "delay_per_email": 0})]:
        finished[task_type] = submit(http, task_type, **parameters)["id"]
        wait_status(http, finished[task_type], {"SUCCESS", "FAILED"})
    cancelled = submit(http, "batch_processing", **SLOW)
    wait_status(http, cancelled["id"], {"RUNNING"})
    time.sleep(1.2)
    http.delete(f"/api/tasks/{cancelled['id']}")
    running = [submit(http, "batch_processing", **SLOW), submit(http, "email_simulation", recipient_count=400,
                                                                   delay_per_email=0.05)]
    for task in running:
        wait_status(http, task["id"], {"RUNNING"})
    submit(http, "data_processing", rows=100000)
    submit(http, "email_simulation", start_in=3600, recipient_count=50)  # the list's "scheduled for"
    time.sleep(4)  # the running ones get somewhere
    return finished


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def live_page(browser: Browser, url: str, viewport: dict[str, int], scheme: str = "light") -> Page:
    """A page of the app in a context of its own, once its socket is live."""
    context = await browser.new_context(viewport=viewport, color_scheme=scheme)
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_selector('#connection[data-connection="live"]')
    return page


async def photograph(url: str, finished: dict[str, str]) -> None:
    async with chromium() as browser:
        page = await open_page(browser, url, DESKTOP, "light")
        await page.select_option("#task-type", "data_processing")  # the form of the task shown
        await show_detail(page, finished["data_processing"])
        await shoot(page, "dashboard.png")
        page = await open_page(browser, url, DESKTOP, "dark")
        await page.select_option("#task-type", "image_processing")
        await tick_rows(page, [finished["text_processing"], finished["ai_summarization"]])
        await shoot(page, "dashboard-dark.png")
        page = await open_page(browser, url, PHONE, "light")
        await show_detail(page, finished["ai_summarization"])
        await shoot(page, "phone.png")


async def open_page(browser: Browser, url: str, viewport: dict[str, int], scheme: str) -> Page:
    """The dashboard, live, with its running tasks listed."""
    page = await live_page(browser, url, viewport, scheme)
    await page.wait_for_selector('#task-rows tr[data-status="RUNNING"]')
    return page


async def shoot(page: Page, name: str) -> None:
    # the pointer off what it last clicked (to the bottom-right corner, over no control), so nothing is drawn hovered
    await page.mouse.move(page.viewport_size["width"] - 1, page.viewport_size["height"] - 1)
    await page.wait_for_timeout(1500)  # progress bars slide into place (a 0.3 s transition) and times tick
    await page.screenshot(path=str(ROOT / "docs" / name))
    await page.context.close()


async def show_detail(page: Page, task_id: str) -> None:
    """The panel on a finished task, once what it loads after opening is in."""
    await page.click(f'tr[data-task-id="{task_id}"] .task-link')
    await page.wait_for_function(DETAIL_LOADED)


async def tick_rows(page: Page, task_ids: list[str]) -> None:
    """Ticks these rows: the bulk bar is hidden until something is selected."""
    for task_id in task_ids:
        await page.check(f'tr[data-task-id="{task_id}"] .row-select')
    await page.wait_for_selector("#bulk-bar:not([hidden])")


def make_schedules(http: httpx.Client) -> None:
    """Three schedules, the last paused; the first run twice by hand (its runs ended) so its
    last run, count and recent runs show. Their next ticks lie an hour or more ahead: none fires meanwhile."""
    # high: its runs start in the next free slot rather than behind the queued task
    report = create_schedule(http, name="Nightly sales report", task_type="data_processing",
                             parameters={"rows": 5000, "processing_time": 0}, cron="30 2 * * *",
                             timezone="Europe/Berlin", priority="high")
    create_schedule(http, name="Hourly digest", task_type="email_simulation",
                    parameters={"recipient_count": 25, "delay_per_email": 0}, interval=3600, priority="low")
    create_schedule(http, name="Weekly reading stats", task_type="text_processing", parameters={},
                    cron="0 7 * * 1", paused=True)
    for _ in range(2):
        run = http.post(f"/api/schedules/{report}/run")
        run.raise_for_status()
        wait_status(http, run.json()["id"], {"SUCCESS"})


def create_schedule(http: httpx.Client, **body: object) -> str:
    answer = http.post("/api/schedules", json=body)
    answer.raise_for_status()
    return answer.json()["id"]


async def photograph_schedules(url: str) -> None:
    """The Schedules page with the first schedule's recent runs open (its Runs button)."""
    async with chromium() as browser:
        page = await live_page(browser, url, DESKTOP)
        await page.wait_for_selector("#param-fields .field")  # the form, built from the task types
        first = page.locator("#schedule-rows tr").filter(has_text="Nightly sales report")
        await first.locator('[data-action="runs"]').click()
        await page.wait_for_function("() => document.querySelectorAll('#schedule-runs tr').length === 2")
        await shoot(page, "schedules.png")


def trickle(http: httpx.Client, minutes: float) -> None:
    """Every 15 s a handful of tasks of every type (a seeded mix): a few minutes of real figures."""
    rng = random.Random(9)
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        for _ in range(rng.randint(2, 6)):
            submit(http, "text_processing", text="words and more words " * rng.randint(10, 400))
        for _ in range(rng.randint(1, 3)):
            submit(http, "data_processing", rows=rng.randint(2000, 40000), processing_time=rng.uniform(0.5, 4))
        for _ in range(rng.randint(0, 2)):
            submit(http, "batch_processing", **FAILING)
        submit(http, "email_simulation", recipient_count=rng.randint(5, 60), delay_per_email=0.05)
        if rng.random() < 0.5:
            submit(http, "image_processing", image_count=rng.randint(1, 4), operation="thumbnail")
        submit(http, "ai_summarization", max_sentences=rng.randint(1, 5))
        time.sleep(15)


async def photograph_panels(url: str) -> None:
    async with chromium() as browser:
        page = await live_page(browser, url, DESKTOP)
        await page.wait_for_selector('#worker-rows tr[data-state="lost"]')
        # both labels are set by the drawing of the series (the queue's with its maximum and mean)
        await page.wait_for_function("() => ['throughput', 'queue'].every(name => document.querySelector("
                                     "`#charts [data-chart=\"${name}\"] canvas`).getAttribute('aria-label'))")
        await page.wait_for_timeout(1500)
        await shoot_panel(page, "#workers", "workers.png")
        await shoot_panel(page, "#charts", "charts.png")
        await page.context.close()


async def shoot_panel(page: Page, selector: str, name: str) -> None:
    """The panel cut from the whole page: an element screenshot scrolls a panel taller than the
    viewport to its top, under the sticky top bar."""
    box = await page.eval_on_selector(selector, PAGE_BOX)
    await page.screenshot(path=str(ROOT / "docs" / name), full_page=True, clip=box)


def main() -> None:
    with running_stack(env={"WORKER_CONCURRENCY": "2"}) as stack:
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            finished = populate(http)
            asyncio.run(photograph(f"{stack.url}/", finished))
            make_schedules(http)
            asyncio.run(photograph_schedules(f"{stack.url}/schedules.html"))
            joined = [start_worker(stack.env) for _ in range(3)]
            try:
                trickle(http, TRICKLE_MINUTES)
                submit(http, "batch_processing", **SLOW)  # running when photographed
                joined[1].send_signal(signal.SIGKILL)  # shown lost after HEARTBEAT_TTL (6 s)
                joined[2].terminate()  # shown stopped
                time.sleep(8)
                asyncio.run(photograph_panels(f"{stack.url}/"))
            finally:
                stop(joined)


if __name__ == "__main__":
    main()
