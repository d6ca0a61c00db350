"""Regenerates the README's dashboard screenshots (docs/dashboard.png, docs/dashboard-dark.png,
docs/workers.png, docs/charts.png).

Starts its own redis-server, web process and a worker running two tasks at a time, submits tasks
that end in every state (and leaves some running and some queued), and photographs the dashboard
in Debian's chromium at 1400×900: light with the detail panel open on the finished image task (its
thumbnails and log), dark with the list alone. Then three more workers join, tasks of every type
trickle in for a few minutes (some fail, some wait in the queue), one worker is SIGKILLed and one
stopped, and the workers and charts panels are photographed from that real data.
Run: `.venv/bin/python docs/screenshots.py` (about eight minutes).
"""

import asyncio
import random
import signal
import sys
import time
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import running_stack, start_worker, stop

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SLOW = {"data": list(range(200)), "delay_per_item": 0.5}
TRICKLE_MINUTES = 6  # of tasks for the charts: a few minutes of bars
FAILING = {"data": ["a", None], "fail_fast": True, "delay_per_item": 0}


def submit(http: httpx.Client, task_type: str, **parameters: object) -> dict:
    answer = http.post("/api/tasks/submit", json={"task_type": task_type, "parameters": parameters})
    answer.raise_for_status()
    return answer.json()


def wait_status(http: httpx.Client, task_id: str, statuses: set[str]) -> None:
    deadline = time.monotonic() + 30
    while http.get(f"/api/tasks/{task_id}").json()["status"] not in statuses:
        if time.monotonic() > deadline:
            raise TimeoutError(task_id)
        time.sleep(0.05)


def populate(http: httpx.Client) -> str:
    """Finished tasks of each kind, one cancelled, two running (worker is full), two queued; returns
    the id of the finished image task."""
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
    submit(http, "image_processing", image_count=20)
    submit(http, "data_processing", rows=100000)
    time.sleep(4)  # the running ones get somewhere
    return finished["image_processing"]


async def photograph(url: str, image_task: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for scheme, name in [("light", "dashboard.png"), ("dark", "dashboard-dark.png")]:
            context = await browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
            page = await context.new_page()
            await page.goto(url)
            await page.wait_for_selector('#connection[data-connection="live"]')
            await page.wait_for_selector('#task-rows tr[data-status="RUNNING"]')
            await page.select_option("#task-type", "image_processing")
            if scheme == "light":
                await show_detail(page, image_task)
            await page.wait_for_timeout(1500)
            await page.screenshot(path=str(ROOT / "docs" / name))
            await context.close()
        await browser.close()


async def show_detail(page: Page, task_id: str) -> None:
    """The panel on the image task, once its thumbnails have loaded and its log has arrived."""
    await page.click(f'tr[data-task-id="{task_id}"] .task-link')
    # a function, not an expression: playwright would eval() that, which the page's CSP refuses
    await page.wait_for_function("() => document.querySelectorAll('#detail .files img').length > 0"
                                 " && [...document.querySelectorAll('#detail .files img')].every(i => i.naturalWidth)"
                                 " && document.querySelectorAll('#detail .log-line').length > 0")


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
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector('#connection[data-connection="live"]')
        await page.wait_for_selector('#worker-rows tr[data-state="lost"]')
        await page.wait_for_function("() => document.querySelector('#charts [data-chart=\"throughput\"] canvas')"
                                     ".getAttribute('aria-label')")
        await page.wait_for_timeout(1500)
        await page.locator("#workers").screenshot(path=str(ROOT / "docs" / "workers.png"))
        await page.locator("#charts").screenshot(path=str(ROOT / "docs" / "charts.png"))
        await context.close()
        await browser.close()


def main() -> None:
    with running_stack(env={"WORKER_CONCURRENCY": "2"}) as stack:
        with httpx.Client(base_url=stack.url, timeout=10) as http:
            image_task = populate(http)
            asyncio.run(photograph(f"{stack.url}/", image_task))
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
